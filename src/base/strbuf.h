/* strbuf.h - the one growable byte buffer (tokenizer, chat templates, server, GGUF writer).
 *
 * The bytes may be binary; the buffer keeps a NUL after the last byte whenever p != NULL, so
 * p is also a C string when the content has no NUL in it. A zero-initialized strbuf is empty
 * and valid (`strbuf b = {0};`); `limit` may be set before the first append to cap the length.
 *
 * Failure style (the only one): every function that can fail returns cllm_status - CLLM_OK, or
 * CLLM_ERR_NOMEM (allocation failed / size overflow) or CLLM_ERR_LIMIT (past `limit`), with the
 * message recorded through err_set. A failure is sticky: the buffer remembers the first error
 * in `err`, and every later append or reserve does nothing and returns that error again. A
 * caller can therefore check each call, or make a run of appends and check sb_status() once.
 * The content written before the failure stays valid (and is freed by sb_free). */
#ifndef CLLM_BASE_STRBUF_H
#define CLLM_BASE_STRBUF_H

#include "cllm.h"

#include <stddef.h>

typedef struct strbuf {
    char *p;         /* NULL until the first byte is stored */
    size_t len, cap; /* cap includes room for the trailing NUL */
    size_t limit;    /* 0: no limit; else len may not exceed it (CLLM_ERR_LIMIT) */
    cllm_status err; /* first failure, CLLM_OK while none */
} strbuf;

/* Make room for `extra` more bytes (plus the NUL) without changing the content. */
cllm_status sb_reserve(strbuf *b, size_t extra);
/* Append n bytes (s may be NULL when n == 0). */
cllm_status sb_append(strbuf *b, const void *s, size_t n);
cllm_status sb_puts(strbuf *b, const char *s);
cllm_status sb_putc(strbuf *b, char c);
/* Append printf-formatted text. */
cllm_status sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first failure, or CLLM_OK. */
static inline cllm_status sb_status(const strbuf *b) {
    return b->err;
}
/* Empty the buffer but keep its memory (and its limit); clears a sticky error. */
void sb_clear(strbuf *b);
/* Hand the bytes to the caller (free() them; never NULL: an empty buffer gives a fresh "" -
 * NULL only if that allocation fails, with CLLM_ERR_NOMEM set) and reset b to empty. *len
 * (optional) gets the length. A failed buffer gives NULL and is freed. */
char *sb_take(strbuf *b, size_t *len);
/* Free the memory; b is empty (limit kept, error cleared) and reusable afterwards. */
void sb_free(strbuf *b);

#endif
