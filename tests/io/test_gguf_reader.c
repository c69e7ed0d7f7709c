/* test_gguf_reader.c - the GGUF metadata reader on hand-built files: every value type read back,
 * and malformed files (truncated anywhere, huge counts, bad types/magic/version, strings past
 * EOF) rejected with a message naming the file, key and offset. */
#include "check.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"
#include <stdint.h>
#include <string.h>
#include <unistd.h>

typedef struct wbuf {
    uint8_t p[4096];
    size_t n;
} wbuf;

static void put(wbuf *b, const void *s, size_t n) {
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void u32(wbuf *b, uint32_t v) {
    put(b, &v, 4);
}
static void u64(wbuf *b, uint64_t v) {
    put(b, &v, 8);
}
static void str(wbuf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void header(wbuf *b, uint32_t version, uint64_t n_kv) {
    b->n = 0;
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, 0);
    u64(b, n_kv);
}

static char path[256];

static void write_file(const wbuf *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(b->p, 1, n, f);
    fclose(f);
}

/* Open and expect failure with `status` and every string of `want` in the message. */
static void expect_fail(const wbuf *b, size_t n, cllm_status status, const char *w1,
                        const char *w2) {
    write_file(b, n);
    gguf_file *g = NULL;
    cllm_status st = gguf_open(path, &g);
    CHECK_MSG(st == status && !g, "size %zu: status %d (%s)", n, (int)st,
              st ? cllm_last_error() : "ok");
    if (st == CLLM_OK) gguf_close(g);
    const char *msg = cllm_last_error();
    CHECK_MSG(strstr(msg, path), "message does not name the file: %s", msg);
    if (w1) CHECK_MSG(strstr(msg, w1), "'%s' not in: %s", w1, msg);
    if (w2) CHECK_MSG(strstr(msg, w2), "'%s' not in: %s", w2, msg);
}

/* A file with one key of every type. */
static void build_all(wbuf *b) {
    header(b, 3, 15);
    str(b, "a.u8"), u32(b, GGUF_TYPE_UINT8), put(b, "\xfe", 1);
    str(b, "a.i8"), u32(b, GGUF_TYPE_INT8), put(b, "\xfe", 1);
    str(b, "a.u16"), u32(b, GGUF_TYPE_UINT16), put(b, "\x34\x12", 2);
    str(b, "a.i16"), u32(b, GGUF_TYPE_INT16), put(b, "\xff\xff", 2);
    str(b, "a.u32"), u32(b, GGUF_TYPE_UINT32), u32(b, 4000000000u);
    str(b, "a.i32"), u32(b, GGUF_TYPE_INT32), u32(b, (uint32_t)-7);
    float f = 1.5f;
    str(b, "a.f32"), u32(b, GGUF_TYPE_FLOAT32), put(b, &f, 4);
    str(b, "a.bool"), u32(b, GGUF_TYPE_BOOL), put(b, "\x01", 1);
    str(b, "a.str"), u32(b, GGUF_TYPE_STRING), str(b, "hello");
    str(b, "a.u64"), u32(b, GGUF_TYPE_UINT64), u64(b, 42);
    str(b, "a.i64"), u32(b, GGUF_TYPE_INT64), u64(b, (uint64_t)-3);
    double d = 2.25;
    str(b, "a.f64"), u32(b, GGUF_TYPE_FLOAT64), put(b, &d, 8);
    str(b, "a.strs"), u32(b, GGUF_TYPE_ARRAY), u32(b, GGUF_TYPE_STRING), u64(b, 3);
    str(b, "x"), str(b, ""), str(b, "zz");
    str(b, "a.ints"), u32(b, GGUF_TYPE_ARRAY), u32(b, GGUF_TYPE_INT32), u64(b, 2);
    u32(b, 5), u32(b, (uint32_t)-5);
    str(b, "a.empty"), u32(b, GGUF_TYPE_ARRAY), u32(b, GGUF_TYPE_FLOAT32), u64(b, 0);
}

static void test_values(void) {
    wbuf b;
    build_all(&b);
    write_file(&b, b.n);
    gguf_file *g;
    cllm_status st = gguf_open(path, &g);
    CHECK_MSG(st == CLLM_OK, "%s", cllm_last_error());
    if (st != CLLM_OK) return;
    CHECK(gguf_version(g) == 3 && gguf_n_kv(g) == 15 && gguf_n_tensors(g) == 0);
    uint32_t u;
    int32_t i;
    float f;
    bool bo;
    gguf_str s;
    gguf_arr a;
    CHECK(gguf_get_u32(g, "a.u8", &u) == CLLM_OK && u == 254);
    CHECK(gguf_get_i32(g, "a.i8", &i) == CLLM_OK && i == -2);
    CHECK(gguf_get_u32(g, "a.u16", &u) == CLLM_OK && u == 0x1234);
    CHECK(gguf_get_i32(g, "a.i16", &i) == CLLM_OK && i == -1);
    CHECK(gguf_get_u32(g, "a.u32", &u) == CLLM_OK && u == 4000000000u);
    CHECK(gguf_get_i32(g, "a.u32", &i) == CLLM_ERR_FORMAT); /* out of range */
    CHECK(gguf_get_i32(g, "a.i32", &i) == CLLM_OK && i == -7);
    CHECK(gguf_get_u32(g, "a.i32", &u) == CLLM_ERR_FORMAT);
    CHECK(gguf_get_f32(g, "a.f32", &f) == CLLM_OK && f == 1.5f);
    CHECK(gguf_get_f32(g, "a.f64", &f) == CLLM_OK && f == 2.25f);
    CHECK(gguf_get_bool(g, "a.bool", &bo) == CLLM_OK && bo);
    CHECK(gguf_get_str(g, "a.str", &s) == CLLM_OK && s.len == 5 && !memcmp(s.p, "hello", 5));
    CHECK(gguf_get_u32(g, "a.u64", &u) == CLLM_OK && u == 42);
    CHECK(gguf_get_i32(g, "a.i64", &i) == CLLM_OK && i == -3);
    CHECK(gguf_get_arr(g, "a.strs", GGUF_TYPE_STRING, &a) == CLLM_OK && a.n == 3);
    s = gguf_arr_str(&a, 0);
    CHECK(s.len == 1 && s.p[0] == 'x');
    CHECK(gguf_arr_str(&a, 1).len == 0);
    s = gguf_arr_str(&a, 2);
    CHECK(s.len == 2 && !memcmp(s.p, "zz", 2));
    CHECK(gguf_arr_str(&a, 3).len == 0); /* out of range: empty, no crash */
    CHECK(gguf_get_arr(g, "a.ints", GGUF_TYPE_COUNT, &a) == CLLM_OK && a.n == 2);
    CHECK(gguf_arr_int(&a, 0) == 5 && gguf_arr_int(&a, 1) == -5 && gguf_arr_int(&a, 2) == 0);
    CHECK(gguf_get_arr(g, "a.empty", GGUF_TYPE_FLOAT32, &a) == CLLM_OK && a.n == 0);
    /* Wrong types and absent keys. */
    CHECK(gguf_get_arr(g, "a.ints", GGUF_TYPE_STRING, &a) == CLLM_ERR_FORMAT);
    CHECK(strstr(cllm_last_error(), "a.ints") != NULL);
    CHECK(gguf_get_str(g, "a.u8", &s) == CLLM_ERR_FORMAT);
    CHECK(gguf_get_bool(g, "a.u8", &bo) == CLLM_ERR_FORMAT);
    CHECK(gguf_get_f32(g, "a.str", &f) == CLLM_ERR_FORMAT);
    CHECK(gguf_get_u32(g, "a.bool", &u) == CLLM_ERR_FORMAT);
    CHECK(gguf_get_u32(g, "nope", &u) == CLLM_ERR_NOT_FOUND);
    CHECK(strstr(cllm_last_error(), "nope") != NULL);
    CHECK(gguf_find(g, "a.f64") == 11 && gguf_find(g, "a.f6") == -1);
    gguf_close(g);
    gguf_close(NULL);
}

static void test_truncated(void) {
    wbuf b;
    build_all(&b);
    /* Every proper prefix is missing some declared bytes. */
    for (size_t n = 0; n < b.n; n++)
        expect_fail(&b, n, CLLM_ERR_FORMAT, n < 4 ? "magic" : NULL, n > 24 ? "offset" : NULL);
    /* A cut inside a named key's value names that key. */
    size_t cut = b.n - 3;
    expect_fail(&b, cut, CLLM_ERR_FORMAT, "a.empty", "offset");
}

static void test_malformed(void) {
    wbuf b;
    header(&b, 3, 0);
    memcpy(b.p, "GGUG", 4);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "magic", NULL);
    header(&b, 1, 0);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "version 1", NULL);
    header(&b, 4, 0);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "version 4", NULL);
    header(&b, 2, 0); /* v2 is fine */
    write_file(&b, b.n);
    gguf_file *g = NULL;
    CHECK(gguf_open(path, &g) == CLLM_OK && gguf_n_kv(g) == 0);
    gguf_close(g);

    header(&b, 3, UINT64_MAX / 2); /* absurd kv count */
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "key/value count", NULL);

    header(&b, 3, 1); /* key length past EOF */
    u64(&b, 1000);
    put(&b, "abcdefghijklmnop", 16);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "key length", "offset 24");

    header(&b, 3, 1); /* string value past EOF */
    str(&b, "k.s"), u32(&b, GGUF_TYPE_STRING), u64(&b, UINT64_MAX), put(&b, "xx", 2);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.s'", "past the end");

    header(&b, 3, 1); /* unknown value type */
    str(&b, "k.t"), u32(&b, 13), u32(&b, 0);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.t'", "unknown value type 13");

    header(&b, 3, 1); /* unknown element type */
    str(&b, "k.e"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, 0x7fffffff), u64(&b, 1);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.e'", "unknown array element type");

    header(&b, 3, 1); /* nested arrays */
    str(&b, "k.n"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, GGUF_TYPE_ARRAY), u64(&b, 1);
    u32(&b, GGUF_TYPE_UINT8), u64(&b, 1), put(&b, "\0", 1);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.n'", "nested");

    header(&b, 3, 1); /* huge element count: must not allocate or read */
    str(&b, "k.h"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, GGUF_TYPE_STRING), u64(&b, 1ull << 60);
    str(&b, "a");
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.h'", "cannot fit");
    header(&b, 3, 1);
    str(&b, "k.h"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, GGUF_TYPE_UINT64), u64(&b, UINT64_MAX);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.h'", "cannot fit");

    header(&b, 3, 1); /* a string element past EOF */
    str(&b, "k.a"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, GGUF_TYPE_STRING), u64(&b, 2);
    str(&b, "ok"), u64(&b, 9), put(&b, "short", 5);
    expect_fail(&b, b.n, CLLM_ERR_FORMAT, "'k.a'", "string array element");

    CHECK(gguf_open("/nonexistent/x.gguf", &g) != CLLM_OK && !g);
}

/* The tokenizer loader on small hand-built vocabularies: missing keys, bad UTF-8, WordPiece. */
static void test_tok_errors(void) {
    wbuf b;
    tokenizer *t = NULL;
    header(&b, 3, 1);
    str(&b, "general.name"), u32(&b, GGUF_TYPE_STRING), str(&b, "x");
    write_file(&b, b.n);
    CHECK(tok_load_gguf(path, &t) == CLLM_ERR_NOT_FOUND && !t);
    CHECK(strstr(cllm_last_error(), "tokenizer.ggml.model") != NULL);

    header(&b, 3, 2);
    str(&b, "tokenizer.ggml.model"), u32(&b, GGUF_TYPE_STRING), str(&b, "gpt2");
    str(&b, "tokenizer.ggml.tokens"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, GGUF_TYPE_STRING);
    u64(&b, 2), str(&b, "a"), str(&b, "\xff");
    write_file(&b, b.n);
    CHECK(tok_load_gguf(path, &t) == CLLM_ERR_FORMAT && !t);
    CHECK(strstr(cllm_last_error(), "UTF-8") != NULL);

    header(&b, 3, 2); /* tokens but no merges */
    str(&b, "tokenizer.ggml.model"), u32(&b, GGUF_TYPE_STRING), str(&b, "gpt2");
    str(&b, "tokenizer.ggml.tokens"), u32(&b, GGUF_TYPE_ARRAY), u32(&b, GGUF_TYPE_STRING);
    u64(&b, 1), str(&b, "a");
    write_file(&b, b.n);
    CHECK(tok_load_gguf(path, &t) == CLLM_ERR_NOT_FOUND && !t);
    CHECK(strstr(cllm_last_error(), "tokenizer.ggml.merges") != NULL);

    header(&b, 3, 1);
    str(&b, "tokenizer.ggml.model"), u32(&b, GGUF_TYPE_STRING), str(&b, "bert");
    write_file(&b, b.n);
    CHECK(tok_load_gguf(path, &t) == CLLM_ERR_UNSUPPORTED && !t);
    CHECK(strstr(cllm_last_error(), "WordPiece (bert) tokenizers are not supported") != NULL);

    header(&b, 3, 1);
    str(&b, "tokenizer.ggml.model"), u32(&b, GGUF_TYPE_STRING), str(&b, "t5");
    write_file(&b, b.n);
    CHECK(tok_load_gguf(path, &t) == CLLM_ERR_UNSUPPORTED && !t);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/cllm_gguf_test_%d.gguf", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    test_values();
    test_truncated();
    test_malformed();
    test_tok_errors();
    unlink(path);
    CHECK_DONE();
}
