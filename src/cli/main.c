/* main.c - the cllm command-line entry point (work in progress). */
#include <stdio.h>
int main(void) {
    fprintf(stderr, "cllm: not built yet\n");
    return 1;
}
