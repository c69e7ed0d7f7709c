/* chat_render_driver.c - test driver: renders a template file with a JSON context file and writes
 * the exact bytes to stdout; on failure prints "<status>: <message>" to stderr and exits 1. */
#include "base/mapfile.h"
#include "chat/chat_template.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TEMPLATE_FILE CONTEXT_JSON\n", argv[0]);
        return 2;
    }
    char *src;
    size_t len;
    if (file_read_all(argv[1], (size_t)64 << 20, &src, &len)) {
        fprintf(stderr, "io: %s\n", cllm_last_error());
        return 1;
    }
    json_error_t je;
    json_t *ctx = json_load_file(argv[2], 0, &je);
    if (!ctx) {
        fprintf(stderr, "json: %s\n", je.text);
        free(src);
        return 1;
    }
    chat_template *t = NULL;
    char *out = NULL;
    size_t n = 0;
    cllm_status st = chat_template_parse(src, len, &t);
    if (!st) st = chat_template_render(t, ctx, &out, &n);
    int rc = 0;
    if (st) {
        fprintf(stderr, "%s: %s\n", cllm_status_str(st), cllm_last_error());
        rc = 1;
    } else {
        fwrite(out, 1, n, stdout);
    }
    free(out);
    chat_template_free(t);
    json_decref(ctx);
    free(src);
    return rc;
}
