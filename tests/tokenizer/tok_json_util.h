/* tok_json_util.h - builds small tokenizer.json files for the pipeline and error tests: a vocab
 * of every printable ASCII character, the 256 byte tokens and some extra words, no merges,
 * ignore_merges on (so a pre-token that is a vocab word comes out whole and shows the split). */
#ifndef CLLM_TESTS_TOK_JSON_UTIL_H
#define CLLM_TESTS_TOK_JSON_UTIL_H
#include "tok_test_util.h"
#include <unistd.h>

static char tmp_dir[64];

static inline void tmp_init(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/cllm-tok-test-XXXXXX");
    if (!mkdtemp(tmp_dir)) perror("mkdtemp");
}

/* Writes data to tmp_dir/name and returns the path (static buffer per call slot). */
static inline const char *tmp_write(const char *name, const char *data, size_t len) {
    static char paths[16][128];
    static int slot;
    char *p = paths[slot++ & 15]; /* a few earlier paths stay valid */
    snprintf(p, 128, "%s/%s", tmp_dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
    return p;
}

static inline void tmp_cleanup(void) {
    static const char *names[] = {"tokenizer.json", "vocab.json", "merges.txt",
                                  "tokenizer_config.json"};
    char p[160];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp_dir, names[i]);
        unlink(p);
    }
    rmdir(tmp_dir);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static inline void sb_add(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* JSON-escape one ASCII/UTF-8 string. */
static inline void sb_str(sbuf *b, const char *s) {
    char tmp[8];
    sb_add(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            tmp[0] = '\\', tmp[1] = *s, tmp[2] = 0;
            sb_add(b, tmp);
        } else {
            tmp[0] = *s, tmp[1] = 0;
            sb_add(b, tmp);
        }
    }
    sb_add(b, "\"");
}

/* A tokenizer.json; each part is raw JSON ("null" when NULL). extra: NULL-terminated words. */
static inline char *make_tokenizer_json(const char *const *extra, const char *added,
                                        const char *normalizer, const char *pretok,
                                        const char *post, const char *decoder) {
    sbuf b = {0};
    char tmp[32];
    int id = 0;
    sb_add(&b, "{\"version\":\"1.0\",\"added_tokens\":");
    sb_add(&b, added ? added : "[]");
    sb_add(&b, ",\"normalizer\":");
    sb_add(&b, normalizer ? normalizer : "null");
    sb_add(&b, ",\"pre_tokenizer\":");
    sb_add(&b, pretok ? pretok : "null");
    sb_add(&b, ",\"post_processor\":");
    sb_add(&b, post ? post : "null");
    sb_add(&b, ",\"decoder\":");
    sb_add(&b, decoder ? decoder : "null");
    sb_add(&b, ",\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,"
               "\"ignore_merges\":true,\"merges\":[],\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    id = 3;
    for (int c = 0; c < 256; c++) {
        snprintf(tmp, sizeof tmp, ",\"<0x%02X>\":%d", c, id++);
        sb_add(&b, tmp);
    }
    for (int c = 0x20; c < 0x7F; c++) {
        char s[2] = {(char)c, 0};
        sb_add(&b, ",");
        sb_str(&b, s);
        snprintf(tmp, sizeof tmp, ":%d", id++);
        sb_add(&b, tmp);
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        sb_add(&b, ",");
        sb_str(&b, extra[i]);
        snprintf(tmp, sizeof tmp, ":%d", id++);
        sb_add(&b, tmp);
    }
    sb_add(&b, "}}}");
    return b.p;
}

/* Encode and render the pieces joined by '|', e.g. "a-|b". Returns a static buffer. */
static inline const char *pieces(const tokenizer *t, const char *s, bool add_special,
                                 bool parse_special) {
    static char out[1024];
    int32_t *ids;
    size_t n;
    out[0] = 0;
    if (tok_encode(t, s, strlen(s), add_special, parse_special, &ids, &n) != CLLM_OK) {
        snprintf(out, sizeof out, "ERROR: %s", cllm_last_error());
        return out;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = tok_id_to_piece(t, ids[i]);
        len += (size_t)snprintf(out + len, sizeof out - len, "%s%s", i ? "|" : "", p ? p : "?");
        if (len >= sizeof out) break;
    }
    free(ids);
    return out;
}

static inline tokenizer *load_json_text(const char *json) {
    const char *p = tmp_write("tokenizer.json", json, strlen(json));
    tokenizer *t = NULL;
    if (tok_load_files(p, NULL, NULL, NULL, &t) != CLLM_OK)
        fprintf(stderr, "load: %s\n", cllm_last_error());
    return t;
}

#endif
