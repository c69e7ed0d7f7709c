/* tok_test_util.h - helpers shared by the tokenizer tests: test-data paths, the llama.cpp
 * .inp/.out vector format, and a streaming-decode check. */
#ifndef CLLM_TESTS_TOK_TEST_UTIL_H
#define CLLM_TESTS_TOK_TEST_UTIL_H
#include "base/mapfile.h"
#include "check.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *td_read(const char *rel, size_t *len) {
    char *p = td_path(rel), *buf = NULL;
    size_t n = 0;
    if (file_read_all(p, (size_t)1 << 28, &buf, &n) != CLLM_OK) {
        fprintf(stderr, "cannot read %s: %s\n", p, cllm_last_error());
        buf = NULL;
    }
    free(p);
    if (len) *len = n;
    return buf;
}

/* Split a .inp file into its test strings (in place). Returns the count. */
static inline size_t split_inp(char *buf, size_t len, char **strs, size_t *lens, size_t cap) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t n = 0, p = 0, sl = sizeof sep - 1;
    while (p < len && n < cap) {
        char *hit = NULL;
        for (size_t i = p; i + sl <= len; i++)
            if (!memcmp(buf + i, sep, sl)) {
                hit = buf + i;
                break;
            }
        if (!hit) break;
        strs[n] = buf + p;
        lens[n] = (size_t)(hit - (buf + p));
        n++;
        p = (size_t)(hit - buf) + sl;
    }
    return n;
}

/* Parse one line of a .out file: space-separated ids. Returns the count, advances *p. */
static inline size_t parse_out_line(char **p, int32_t *ids, size_t cap) {
    size_t n = 0;
    char *s = *p;
    while (*s && *s != '\n') {
        if (*s == ' ') {
            s++;
            continue;
        }
        long v = strtol(s, &s, 10);
        if (n < cap) ids[n] = (int32_t)v;
        n++;
    }
    if (*s == '\n') s++;
    *p = s;
    return n;
}

/* Stream-decode ids one at a time (after `ctx`) and compare the concatenation with `expect`. */
static inline int stream_matches(const tokenizer *t, const int32_t *ctx, size_t n_ctx,
                                 const int32_t *ids, size_t n, bool skip, const char *expect,
                                 size_t expect_len) {
    tok_stream *s;
    if (tok_stream_create(t, skip, &s) != CLLM_OK) return 0;
    if (tok_stream_reset(s, ctx, n_ctx) != CLLM_OK) {
        tok_stream_free(s);
        return 0;
    }
    char *acc = malloc(expect_len * 2 + 64);
    size_t al = 0, cap = expect_len * 2 + 64;
    int ok = 1;
    for (size_t i = 0; i <= n && ok; i++) {
        const char *txt;
        size_t tl;
        cllm_status st =
            i < n ? tok_stream_push(s, ids[i], &txt, &tl) : tok_stream_flush(s, &txt, &tl);
        if (st != CLLM_OK) {
            ok = 0;
            break;
        }
        /* Every emitted piece must be complete UTF-8 on its own. */
        for (size_t k = 0; k < tl;) {
            unsigned char c = (unsigned char)txt[k];
            size_t need = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (k + need > tl) ok = 0;
            k += need;
        }
        if (al + tl > cap) {
            ok = 0;
            break;
        }
        memcpy(acc + al, txt, tl);
        al += tl;
    }
    if (ok && (al != expect_len || memcmp(acc, expect, al) != 0)) {
        fprintf(stderr, "stream: got '%.*s'\n   expected '%.*s'\n", (int)al, acc, (int)expect_len,
                expect);
        ok = 0;
    }
    free(acc);
    tok_stream_free(s);
    return ok;
}

#endif
