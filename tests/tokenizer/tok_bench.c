/* tok_bench.c - encode throughput (single thread) and load time of a tokenizer folder:
 *   tok_bench <tokenizer-dir> <text files...> */
#include "base/clock.h"
#include "base/mapfile.h"
#include "tokenizer/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <tokenizer-dir> <text files...>\n", argv[0]);
        return 2;
    }
    double t0 = clock_now();
    tokenizer *t;
    if (tok_load_dir(argv[1], &t) != CLLM_OK) {
        fprintf(stderr, "%s\n", cllm_last_error());
        return 1;
    }
    double t_load = clock_now() - t0;
    char *all = NULL;
    size_t n = 0;
    for (int i = 2; i < argc; i++) {
        char *buf;
        size_t len;
        if (file_read_all(argv[i], (size_t)1 << 30, &buf, &len) != CLLM_OK) continue;
        all = realloc(all, n + len + 1);
        memcpy(all + n, buf, len);
        n += len;
        free(buf);
    }
    int32_t *ids;
    size_t ni;
    t0 = clock_now();
    if (tok_encode(t, all, n, false, false, &ids, &ni) != CLLM_OK) {
        fprintf(stderr, "%s\n", cllm_last_error());
        return 1;
    }
    double t_enc = clock_now() - t0;
    t0 = clock_now();
    char *text;
    size_t tl;
    if (tok_decode(t, ids, ni, false, &text, &tl) != CLLM_OK) return 1;
    double t_dec = clock_now() - t0;
    printf("%s: load %.3f s; encode %.2f MB -> %zu tokens in %.3f s = %.1f MB/s; decode %.3f s; "
           "round trip %s\n",
           argv[1], t_load, n / 1e6, ni, t_enc, n / 1e6 / t_enc, t_dec,
           tl == n && !memcmp(text, all, n) ? "ok" : "DIFFERS");
    free(text);
    free(ids);
    free(all);
    tok_free(t);
    return 0;
}
