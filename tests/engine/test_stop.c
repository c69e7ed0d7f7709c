/* test_stop.c - stop-string matching across token boundaries (hand-computed expectations),
 * including multi-byte UTF-8: stop strings split mid-code-point across pushes, held-back prefixes
 * that end inside a character, and the engine's pipeline (token ids -> streaming detokenizer ->
 * stop matcher, as engine_step.c's accept_token) on a byte-fallback tokenizer where every CJK
 * character is three byte tokens: every emitted chunk must be valid UTF-8 and the cut exact. */
#include "check.h"
#include "engine/stop.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strict UTF-8 validity (no overlongs, surrogates or code points above U+10FFFF) */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k) return 0; /* truncated */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Feed `text` to a matcher in pieces cut at the byte offsets cuts[0..nc-1] (any byte, also
 * inside a character); returns 1 if a stop fired, and the concatenated output in got. */
static int feed_cuts(const char *const *stops, int ns, const char *text, const size_t *cuts, int nc,
                     char *got, size_t gotcap) {
    stop_matcher sm;
    if (stop_init(&sm, stops, ns)) return -1;
    size_t glen = 0, prev = 0, n = strlen(text);
    int hit = 0;
    for (int i = 0; i <= nc && !hit; i++) {
        size_t end = i < nc ? cuts[i] : n;
        const char *o;
        size_t ol;
        hit = stop_push(&sm, text + prev, end - prev, &o, &ol);
        if (glen + ol < gotcap) memcpy(got + glen, o, ol), glen += ol;
        prev = end;
    }
    if (!hit) {
        const char *o;
        size_t ol;
        stop_flush(&sm, &o, &ol);
        if (glen + ol < gotcap) memcpy(got + glen, o, ol), glen += ol;
    }
    got[glen] = 0;
    stop_free(&sm);
    return hit;
}

/* Every way of cutting `text` into three pieces: the output is the text up to the first stop
 * string (or all of it), and whether the stop fired, whatever the cuts. */
static void all_cuts(const char *const *stops, int ns, const char *text, const char *want,
                     int want_hit) {
    size_t n = strlen(text);
    char got[512];
    int bad = 0;
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            size_t cuts[2] = {a, b};
            int hit = feed_cuts(stops, ns, text, cuts, 2, got, sizeof got);
            if (hit != want_hit || strcmp(got, want) != 0) {
                if (!bad++)
                    fprintf(stderr, "text %s cuts %zu,%zu: hit %d got '%s' want '%s'\n", text, a, b,
                            hit, got, want);
            }
        }
    CHECK_MSG(bad == 0, "%d cut pairs of '%s' wrong", bad, text);
}

/* The engine's pipeline over a tokenizer: ids -> tok_stream_push -> stop_push (then, at the
 * end, tok_stream_flush -> stop_push -> stop_flush). Every chunk handed out must be valid
 * UTF-8; returns the concatenation in got and whether a stop string fired. */
static int pipeline(const tokenizer *t, const char *const *stops, int ns, const int32_t *ids,
                    size_t n, char *got, size_t gotcap, int *chunks_bad) {
    tok_stream *ts;
    stop_matcher sm;
    if (tok_stream_create(t, true, &ts)) return -1;
    if (stop_init(&sm, stops, ns)) return -1;
    size_t glen = 0;
    int hit = 0;
    const char *text, *o;
    size_t len, ol;
    for (size_t i = 0; i < n && !hit; i++) {
        if (tok_stream_push(ts, ids[i], &text, &len)) return -1;
        hit = stop_push(&sm, text, len, &o, &ol);
        if (!utf8_valid((const unsigned char *)o, ol)) (*chunks_bad)++;
        if (glen + ol < gotcap) memcpy(got + glen, o, ol), glen += ol;
    }
    if (!hit) {
        if (tok_stream_flush(ts, &text, &len)) return -1;
        hit = stop_push(&sm, text, len, &o, &ol);
        if (!utf8_valid((const unsigned char *)o, ol)) (*chunks_bad)++;
        if (glen + ol < gotcap) memcpy(got + glen, o, ol), glen += ol;
        if (!hit) {
            stop_flush(&sm, &o, &ol);
            if (!utf8_valid((const unsigned char *)o, ol)) (*chunks_bad)++;
            if (glen + ol < gotcap) memcpy(got + glen, o, ol), glen += ol;
        }
    }
    got[glen] = 0;
    stop_free(&sm);
    tok_stream_free(ts);
    return hit;
}

static void utf8_tests(void) {
    /* the stop string is split mid-code-point across pushes, at every pair of cut points */
    const char *s_jp[] = {"\xe6\x97\xa5\xe6\x9c\xac"}; /* 日本 */
    all_cuts(s_jp, 1, "a\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac tail", "a\xc3\xa9 ", 1);
    /* a prefix of the stop string that ends inside a character is held back, then released
     * whole when the character turns out different: 日 then 曜 (E6 9B 9C), not 本 (E6 9C AC) */
    all_cuts(s_jp, 1, "x\xe6\x97\xa5\xe6\x9b\x9c!", "x\xe6\x97\xa5\xe6\x9b\x9c!", 0);
    /* two stop strings sharing a lead byte; the earlier occurrence wins; emoji (4 bytes) */
    const char *s_two[] = {"\xf0\x9f\x98\x80", "\xc3\xa9t\xc3\xa9"}; /* 😀, été */
    all_cuts(s_two, 2, "\xc3\xa9 \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", "\xc3\xa9 ", 1);
    all_cuts(s_two, 2, "\xf0\x9f\x98\x81\xf0\x9f\x98\x80z", "\xf0\x9f\x98\x81", 1);
    /* held back exactly: after "é", "été" may follow, so "é" is not emitted yet; after a
     * push that ends mid-character (C3), nothing past the last complete character is emitted */
    {
        stop_matcher sm;
        const char *o;
        size_t ol;
        stop_init(&sm, s_two, 2);
        CHECK(!stop_push(&sm, "ab\xc3\xa9", 4, &o, &ol) && ol == 2 && memcmp(o, "ab", 2) == 0);
        CHECK(!stop_push(&sm, "t\xc3", 2, &o, &ol) && ol == 0);
        CHECK(stop_push(&sm, "\xa9!", 2, &o, &ol) && ol == 0);
        stop_free(&sm);
        stop_init(&sm, s_two, 2);
        CHECK(!stop_push(&sm, "\xf0\x9f", 2, &o, &ol) && ol == 0);
        CHECK(!stop_push(&sm, "\x98", 1, &o, &ol) && ol == 0);
        CHECK(!stop_push(&sm, "\x81", 1, &o, &ol) && ol == 4 &&
              memcmp(o, "\xf0\x9f\x98\x81", 4) == 0);
        stop_free(&sm);
    }

    /* the engine's pipeline on stories260K's tokenizer (byte fallback: CJK characters are
     * three <0xNN> tokens each, so the stop string 日本 arrives as six byte tokens) */
    char dir[4096];
    tokenizer *t;
    td_join(dir, sizeof dir, "stories260K-hf");
    CHECK(tok_load_dir(dir, &t) == CLLM_OK);
    const char *text = "The \xe5\xa4\xa7 \xe6\x97\xa5\xe6\x9b\x9c \xe6\x97\xa5\xe6\x9c\xac end";
    int32_t *ids;
    size_t n;
    CHECK(tok_encode(t, text, strlen(text), false, false, &ids, &n) == CLLM_OK);
    int n_byte_tokens = 0;
    char dec[512];
    for (size_t i = 0; i < n; i++) {
        /* a byte token decodes alone to an incomplete character */
        char *piece;
        size_t pl;
        if (tok_decode(t, &ids[i], 1, true, &piece, &pl) == CLLM_OK) {
            if (pl >= 1 && ((unsigned char)piece[pl - 1] & 0x80)) n_byte_tokens++;
            free(piece);
        }
    }
    CHECK_MSG(n_byte_tokens >= 12, "expected byte-fallback tokens, got %d of %zu", n_byte_tokens,
              n);
    int bad = 0;
    /* stop 日本: the cut is exactly before it; 日曜 (shares 日) is emitted in full */
    CHECK(pipeline(t, s_jp, 1, ids, n, dec, sizeof dec, &bad) == 1);
    CHECK_MSG(strcmp(dec, "The \xe5\xa4\xa7 \xe6\x97\xa5\xe6\x9b\x9c ") == 0, "got '%s'", dec);
    /* no stop strings, and a stop string that never completes: the whole text comes out */
    const char *s_none[] = {"\xe6\x97\xa5\xe6\x9c\xac!"};
    CHECK(pipeline(t, s_none, 1, ids, n, dec, sizeof dec, &bad) == 0);
    CHECK_MSG(strcmp(dec, text) == 0, "got '%s'", dec);
    CHECK(pipeline(t, NULL, 0, ids, n, dec, sizeof dec, &bad) == 0 && strcmp(dec, text) == 0);
    /* generation that ends inside a character (a length stop after the first byte token of 本):
     * the flush emits the incomplete tail as the tokenizer's replacement, still valid UTF-8 */
    size_t cut = 0;
    for (size_t i = 0; i < n; i++) {
        char *d;
        size_t dl;
        if (tok_decode(t, ids, i + 1, true, &d, &dl) == CLLM_OK) {
            if (dl > 0 && (unsigned char)d[dl - 1] == 0xAC) cut = i; /* last byte of 本 */
            free(d);
        }
    }
    if (cut >= 2) CHECK(pipeline(t, s_none, 1, ids, cut, dec, sizeof dec, &bad) == 0);
    CHECK_MSG(bad == 0, "%d emitted chunks were not valid UTF-8", bad);
    free(ids);
    tok_free(t);
}

/* feed pieces, collect emitted text; return whether a stop fired */
static int feed(const char *const *stops, int ns, const char *const *pieces, int np, char *got) {
    stop_matcher sm;
    if (stop_init(&sm, stops, ns)) return -1;
    got[0] = 0;
    int hit = 0;
    for (int i = 0; i < np && !hit; i++) {
        const char *o;
        size_t ol;
        hit = stop_push(&sm, pieces[i], strlen(pieces[i]), &o, &ol);
        strncat(got, o, ol);
    }
    if (!hit) {
        const char *o;
        size_t ol;
        stop_flush(&sm, &o, &ol);
        strncat(got, o, ol);
    }
    stop_free(&sm);
    return hit;
}

int main(void) {
    char got[256];
    const char *s1[] = {"\n\n"};
    const char *p1[] = {"Hello", "\n", "\n", "World"};
    CHECK(feed(s1, 1, p1, 4, got) == 1 && strcmp(got, "Hello") == 0);
    const char *p2[] = {"Hello", "\n", "World"};
    CHECK(feed(s1, 1, p2, 3, got) == 0 && strcmp(got, "Hello\nWorld") == 0);
    const char *s3[] = {"END", "STOP"};
    const char *p3[] = {"abc ST", "O", "P tail"};
    CHECK(feed(s3, 2, p3, 3, got) == 1 && strcmp(got, "abc ") == 0);
    const char *p4[] = {"xEN"};
    CHECK(feed(s3, 2, p4, 1, got) == 0 && strcmp(got, "xEN") == 0); /* held back, then flushed */
    const char *p5[] = {"aENDb"};
    CHECK(feed(s3, 2, p5, 1, got) == 1 && strcmp(got, "a") == 0);
    const char *p6[] = {"one", " two"};
    CHECK(feed(NULL, 0, p6, 2, got) == 0 && strcmp(got, "one two") == 0);
    /* emitted text never contains a prefix of a stop string that later completes */
    {
        stop_matcher sm;
        const char *st[] = {"<|end|>"};
        stop_init(&sm, st, 1);
        const char *o;
        size_t ol;
        CHECK(!stop_push(&sm, "hi <|", 5, &o, &ol) && ol == 3);
        CHECK(!stop_push(&sm, "en", 2, &o, &ol) && ol == 0);
        CHECK(stop_push(&sm, "d|> more", 8, &o, &ol) && ol == 0);
        stop_free(&sm);
    }
    const char *empty[] = {""};
    stop_matcher sm;
    CHECK(stop_init(&sm, empty, 1) == CLLM_ERR_INVALID_ARG);
    stop_free(&sm);
    utf8_tests();
    CHECK_DONE();
}
