/* test_strbuf.c - base/strbuf: appends of every kind, the trailing NUL, growth, ownership
 * transfer, the length limit and the sticky error. */
#include "base/strbuf.h"
#include "check.h"

#include <stdint.h>
#include <string.h>

static void test_basic(void) {
    strbuf b = {0};
    CHECK(b.p == NULL && b.len == 0 && sb_status(&b) == CLLM_OK);
    CHECK(sb_append(&b, NULL, 0) == CLLM_OK);
    CHECK(b.p != NULL && b.len == 0 && b.p[0] == 0);
    CHECK(sb_append(&b, "abc", 3) == CLLM_OK);
    CHECK(sb_puts(&b, "de") == CLLM_OK);
    CHECK(sb_putc(&b, 'f') == CLLM_OK);
    CHECK(sb_printf(&b, "-%d-%s-%.2f", 42, "x", 0.5) == CLLM_OK);
    CHECK(b.len == strlen("abcdef-42-x-0.50"));
    CHECK(strcmp(b.p, "abcdef-42-x-0.50") == 0);
    CHECK(b.cap > b.len);
    sb_clear(&b);
    CHECK(b.len == 0 && b.p && b.p[0] == 0);
    CHECK(sb_puts(&b, "again") == CLLM_OK && strcmp(b.p, "again") == 0);
    sb_free(&b);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    CHECK(sb_puts(&b, "reused") == CLLM_OK && strcmp(b.p, "reused") == 0);
    sb_free(&b);
}

/* Binary content (embedded NULs) and growth over many appends keep every byte. */
static void test_binary_growth(void) {
    strbuf b = {0};
    const size_t n = 100000;
    for (size_t i = 0; i < n; i++) {
        char c = (char)(i * 7 % 256);
        if (sb_append(&b, &c, 1) != CLLM_OK) break;
    }
    CHECK(b.len == n && b.cap > n && b.p[n] == 0);
    size_t bad = 0;
    for (size_t i = 0; i < b.len; i++)
        bad += b.p[i] != (char)(i * 7 % 256);
    CHECK_MSG(bad == 0, "%zu bytes differ", bad);
    /* reserve: no content change, room for the bytes + NUL, len unchanged */
    size_t len = b.len;
    CHECK(sb_reserve(&b, 5000) == CLLM_OK && b.len == len && b.cap >= len + 5000 + 1);
    char *before = b.p;
    CHECK(sb_append(&b, before, 4000) == CLLM_OK); /* room reserved: no move */
    CHECK(b.p == before && memcmp(b.p + len, b.p, 4000) == 0);
    sb_free(&b);
}

/* printf output longer than the internal stack buffer, and exactly at its edges. */
static void test_printf_long(void) {
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    strbuf b = {0};
    CHECK(sb_puts(&b, "<") == CLLM_OK);
    CHECK(sb_printf(&b, "%s|%d", big, 7) == CLLM_OK);
    CHECK(b.len == 1 + 2999 + 2);
    CHECK(b.p[0] == '<' && b.p[1] == 'z' && b.p[2999] == 'z' && strcmp(b.p + 3000, "|7") == 0);
    for (int w = 250; w <= 260; w++) {
        sb_clear(&b);
        CHECK(sb_printf(&b, "%*d", w, 1) == CLLM_OK);
        CHECK(b.len == (size_t)w && b.p[w - 1] == '1' && b.p[w] == 0 && b.p[0] == ' ');
    }
    sb_free(&b);
}

static void test_take(void) {
    strbuf b = {0};
    size_t len = 99;
    char *s = sb_take(&b, &len); /* empty: a fresh "" */
    CHECK(s && s[0] == 0 && len == 0);
    free(s);
    CHECK(sb_puts(&b, "owned") == CLLM_OK);
    char *p = b.p;
    s = sb_take(&b, &len);
    CHECK(s == p && len == 5 && strcmp(s, "owned") == 0);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    free(s);
    CHECK(sb_puts(&b, "x") == CLLM_OK && strcmp(b.p, "x") == 0); /* usable after take */
    s = sb_take(&b, NULL);
    CHECK(s && strcmp(s, "x") == 0);
    free(s);
}

/* The limit: an append that would pass it fails with CLLM_ERR_LIMIT and a message, leaves the
 * content as it was, and every later call fails the same way until sb_clear. */
static void test_limit_sticky(void) {
    strbuf b = {.limit = 8};
    CHECK(sb_puts(&b, "12345678") == CLLM_OK && b.len == 8);
    CHECK(sb_putc(&b, '9') == CLLM_ERR_LIMIT);
    CHECK(strstr(cllm_last_error(), "8 bytes") != NULL);
    CHECK(b.len == 8 && strcmp(b.p, "12345678") == 0);
    CHECK(sb_status(&b) == CLLM_ERR_LIMIT);
    CHECK(sb_append(&b, "", 0) == CLLM_ERR_LIMIT); /* sticky, even for nothing */
    CHECK(sb_printf(&b, "%d", 1) == CLLM_ERR_LIMIT);
    CHECK(sb_reserve(&b, 0) == CLLM_ERR_LIMIT);
    CHECK(b.len == 8);
    size_t len = 1;
    char *s = sb_take(&b, &len); /* a failed buffer gives NULL and is freed */
    CHECK(s == NULL && len == 0 && b.p == NULL && sb_status(&b) == CLLM_OK);
    CHECK(b.limit == 8); /* the limit survives */
    CHECK(sb_puts(&b, "abc") == CLLM_OK);
    CHECK(sb_printf(&b, "%s", "defghi") == CLLM_ERR_LIMIT && b.len == 3);
    sb_clear(&b);
    CHECK(sb_status(&b) == CLLM_OK && sb_puts(&b, "abcdefgh") == CLLM_OK);
    sb_free(&b);
}

/* Sizes that cannot be represented fail with CLLM_ERR_NOMEM instead of wrapping around. */
static void test_overflow(void) {
    strbuf b = {0};
    CHECK(sb_puts(&b, "ab") == CLLM_OK);
    CHECK(sb_reserve(&b, SIZE_MAX - 1) == CLLM_ERR_NOMEM);
    CHECK(sb_status(&b) == CLLM_ERR_NOMEM && b.len == 2 && strcmp(b.p, "ab") == 0);
    CHECK(sb_puts(&b, "c") == CLLM_ERR_NOMEM);
    sb_free(&b);
    CHECK(sb_puts(&b, "ok") == CLLM_OK);
    CHECK(sb_append(&b, "x", SIZE_MAX) == CLLM_ERR_NOMEM && b.len == 2);
    sb_free(&b);
}

int main(void) {
    test_basic();
    test_binary_growth();
    test_printf_long();
    test_take();
    test_limit_sticky();
    test_overflow();
    CHECK_DONE();
}
