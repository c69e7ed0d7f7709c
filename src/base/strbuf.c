/* strbuf.c - the growable byte buffer (see strbuf.h for the failure rules). */
#include "base/strbuf.h"

#include "base/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cllm_status fail(strbuf *b, cllm_status st) {
    b->err = st;
    return st;
}

cllm_status sb_reserve(strbuf *b, size_t extra) {
    if (b->err != CLLM_OK) return b->err;
    if (extra > SIZE_MAX - 1 - b->len)
        return fail(b, err_set(CLLM_ERR_NOMEM, "buffer: %zu + %zu bytes overflow", b->len, extra));
    size_t need = b->len + extra + 1; /* + NUL */
    if (b->limit && need - 1 > b->limit)
        return fail(b, err_set(CLLM_ERR_LIMIT, "output larger than %zu bytes", b->limit));
    if (need <= b->cap) return CLLM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) return fail(b, err_set(CLLM_ERR_NOMEM, "out of memory (a %zu-byte buffer)", cap));
    b->p = p;
    b->cap = cap;
    return CLLM_OK;
}

cllm_status sb_append(strbuf *b, const void *s, size_t n) {
    cllm_status st = sb_reserve(b, n);
    if (st != CLLM_OK) return st;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return CLLM_OK;
}

cllm_status sb_puts(strbuf *b, const char *s) {
    return sb_append(b, s, strlen(s));
}

cllm_status sb_putc(strbuf *b, char c) {
    return sb_append(b, &c, 1);
}

cllm_status sb_printf(strbuf *b, const char *fmt, ...) {
    if (b->err != CLLM_OK) return b->err;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return fail(b, err_set(CLLM_ERR_INVALID_ARG, "buffer: bad format '%s'", fmt));
    if ((size_t)n < sizeof small) return sb_append(b, small, (size_t)n);
    cllm_status st = sb_reserve(b, (size_t)n);
    if (st != CLLM_OK) return st;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CLLM_OK;
}

void sb_clear(strbuf *b) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
    b->err = CLLM_OK;
}

char *sb_take(strbuf *b, size_t *len) {
    char *p = NULL;
    size_t n = 0;
    if (b->err == CLLM_OK) {
        if (b->p) {
            p = b->p;
            n = b->len;
            b->p = NULL;
        } else {
            p = calloc(1, 1);
            if (!p) err_set(CLLM_ERR_NOMEM, "out of memory");
        }
    }
    sb_free(b);
    if (len) *len = n;
    return p;
}

void sb_free(strbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = CLLM_OK;
}
