/* fuzz_tokenizer.c - libFuzzer target for tokenizer.json (the whole pipeline description: model
 * vocab + merges, added tokens, normalizer, pre-tokenizer regexes, post-processor, decoder): the
 * input is written as tokenizer.json into a per-process folder in /dev/shm (or /tmp) and loaded
 * with tok_load_dir; a loaded tokenizer encodes a fixed text (with special tokens parsed) and
 * decodes the ids back, one-shot and streamed. */
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[96];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/cllm-fuzz-tok-%d", base, (int)getpid());
        mkdir(dir, 0700);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    if (size) fwrite(data, 1, size, fp);
    fclose(fp);
    tokenizer *t;
    if (tok_load_dir(dir, &t) != CLLM_OK) return 0;
    static const char text[] = "Hello  world!\n<s> caf\xC3\xA9 \xE4\xB8\xAD 123 <|endoftext|>";
    int32_t *ids = NULL;
    size_t n = 0;
    if (tok_encode(t, text, sizeof text - 1, true, true, &ids, &n) == CLLM_OK) {
        char *out = NULL;
        size_t len = 0;
        if (tok_decode(t, ids, n, false, &out, &len) == CLLM_OK) free(out);
        tok_stream *s;
        if (tok_stream_create(t, true, &s) == CLLM_OK) {
            const char *p;
            for (size_t i = 0; i < n; i++)
                (void)tok_stream_push(s, ids[i], &p, &len);
            (void)tok_stream_flush(s, &p, &len);
            tok_stream_free(s);
        }
        free(ids);
    }
    tok_free(t);
    return 0;
}
