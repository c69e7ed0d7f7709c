/* test_tok_spm.c - SentencePiece-style BPE tokenizer.json files (Prepend/Replace normalizer,
 * byte fallback, Strip decoder): stories260K's goldens and the Mistral v0.1 vocabulary. */
#include "tok_test_util.h"
#include <jansson.h>

static tokenizer *load_dir(const char *rel) {
    char *dir = td_path(rel);
    tokenizer *t = NULL;
    if (tok_load_dir(dir, &t) != CLLM_OK) fprintf(stderr, "%s: %s\n", dir, cllm_last_error());
    free(dir);
    return t;
}

static int ids_equal(const tokenizer *t, const char *s, bool add_special, const int32_t *want,
                     size_t nw) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (tok_encode(t, s, strlen(s), add_special, false, &ids, &n) != CLLM_OK) {
        fprintf(stderr, "encode '%s': %s\n", s, cllm_last_error());
        return 0;
    }
    int ok = n == nw && !memcmp(ids, want, n * sizeof *ids);
    if (!ok) {
        fprintf(stderr, "encode '%s': got", s);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

static void test_stories(void) {
    tokenizer *t = load_dir("stories260K-hf");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(tok_vocab_size(t) == 512);
    CHECK(tok_bos_id(t) == 1);
    CHECK(tok_eos_id(t) == 2);
    CHECK(tok_is_special(t, 1) && !tok_is_special(t, 403));
    static const int32_t want[] = {1, 403, 407, 261, 378};
    CHECK(ids_equal(t, "Once upon a time", true, want, 5));
    CHECK(ids_equal(t, "Once upon a time", false, want + 1, 4));

    size_t len;
    char *g = td_read("stories260K/golden.json", &len);
    CHECK(g != NULL);
    json_error_t e;
    json_t *root = g ? json_loadb(g, len, 0, &e) : NULL;
    json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) >= 3);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c), *jids = json_object_get(cs, "ids");
        const char *out = json_string_value(json_object_get(cs, "stdout"));
        const char *prompt = json_string_value(json_object_get(cs, "prompt"));
        size_t n = json_array_size(jids);
        int32_t *ids = malloc(n * sizeof *ids);
        for (size_t i = 0; i < n; i++)
            ids[i] = (int32_t)json_integer_value(json_array_get(jids, i));
        char *text;
        size_t tl;
        CHECK(tok_decode(t, ids, n, true, &text, &tl) == CLLM_OK);
        size_t ol = strlen(out) - 1; /* run.c adds a final newline */
        CHECK_MSG(tl == ol && !memcmp(text, out, ol), "case %zu decode:\n%s\nvs\n%s", c, text, out);

        /* The prompt re-encodes to the golden prompt ids (BOS + prompt). */
        int32_t *pids;
        size_t pn;
        CHECK(tok_encode(t, prompt, strlen(prompt), true, false, &pids, &pn) == CLLM_OK);
        CHECK_MSG(pn <= n && !memcmp(pids, ids, pn * sizeof *ids), "case %zu prompt ids", c);

        /* Streaming the generated ids after the prompt as context gives exactly the rest. */
        char *ptext;
        size_t ptl;
        CHECK(tok_decode(t, ids, pn, true, &ptext, &ptl) == CLLM_OK);
        CHECK(ptl <= tl && !memcmp(ptext, text, ptl));
        CHECK_MSG(stream_matches(t, ids, pn, ids + pn, n - pn, true, text + ptl, tl - ptl),
                  "case %zu stream with context", c);
        CHECK(stream_matches(t, NULL, 0, ids, n, true, text, tl));
        free(ptext);
        free(pids);
        free(text);
        free(ids);
    }
    /* The first generated token after a prompt keeps its space. */
    {
        tok_stream *s;
        const char *txt;
        size_t tl;
        int32_t there = tok_piece_to_id(t, "\xE2\x96\x81there");
        CHECK(there > 0);
        CHECK(tok_stream_create(t, true, &s) == CLLM_OK);
        CHECK(tok_stream_reset(s, want, 5) == CLLM_OK);
        CHECK(tok_stream_push(s, there, &txt, &tl) == CLLM_OK);
        CHECK(tl == 6 && !memcmp(txt, " there", 6));
        tok_stream_free(s);
    }
    json_decref(root);
    free(g);
    tok_free(t);
}

static const char *const STRINGS[] = {
    "Hello world",
    "the",
    " leading and  double  spaces ",
    "Tabs\tand\nnewlines\n\n",
    "caf\xC3\xA9 na\xC3\xAFve \xC3\xBC\xC3\xB6\xC3\xA4",
    "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",                /* CJK */
    "llama \xF0\x9F\xA6\x99 and \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", /* emoji */
    "<s> is text here, </s> too",
    "1234567890 3.14159",
    "",
    " ",
};

static void test_mistral(void) {
    tokenizer *t = load_dir("tokenizers/mistral-v0.1-spm");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(tok_vocab_size(t) == 32000);
    CHECK(tok_bos_id(t) == 1 && tok_eos_id(t) == 2);
    CHECK(tok_piece_to_id(t, "\xE2\x96\x81the") == 272);
    CHECK(!strcmp(tok_id_to_piece(t, 13), "<0x0A>"));
    /* Whole-word pieces that exist in the vocab. */
    static const int32_t hw[] = {22557, 1526}, the[] = {272}, bos_hello[] = {1, 22557};
    CHECK(ids_equal(t, "Hello world", false, hw, 2));
    CHECK(ids_equal(t, "the", false, the, 1));
    CHECK(ids_equal(t, "Hello", true, bos_hello, 2));
    /* U+1F999 is not in the vocab: "\u2581" then its four UTF-8 bytes as <0xXX> tokens (<0x00> =
     * 3). */
    static const int32_t llama[] = {28705, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99};
    CHECK(ids_equal(t, "\xF0\x9F\xA6\x99", false, llama, 5));
    /* Neither "\u2581\xe4\xbd\xa0" nor the pair of CJK characters is a piece. */
    static const int32_t nihao[] = {28705, 29383, 29530};
    CHECK(ids_equal(t, "\xE4\xBD\xA0\xE5\xA5\xBD", false, nihao, 3));
    static const int32_t nl[] = {28705, 13};
    CHECK(ids_equal(t, "\n", false, nl, 2));

    int32_t *ids;
    size_t n;
    for (size_t i = 0; i < sizeof STRINGS / sizeof *STRINGS; i++) {
        const char *s = STRINGS[i];
        int32_t *ids;
        size_t n;
        CHECK(tok_encode(t, s, strlen(s), true, false, &ids, &n) == CLLM_OK);
        char *text;
        size_t tl;
        CHECK(tok_decode(t, ids, n, true, &text, &tl) == CLLM_OK);
        /* The SPM decoder strips the one space Prepend added. */
        CHECK_MSG(tl == strlen(s) && !memcmp(text, s, tl), "round trip '%s' -> '%s'", s, text);
        CHECK_MSG(stream_matches(t, NULL, 0, ids, n, true, text, tl), "stream '%s'", s);
        free(text);
        free(ids);
    }
    /* A literal U+2581 in the input is indistinguishable from a space after decoding (as in HF). */
    {
        const char *s = "\xE2\x96\x81"
                        "already";
        char *text;
        size_t tl;
        CHECK(tok_encode(t, s, strlen(s), false, false, &ids, &n) == CLLM_OK);
        CHECK(tok_decode(t, ids, n, false, &text, &tl) == CLLM_OK);
        CHECK(!strcmp(text, " already"));
        free(text);
        free(ids);
    }
    /* parse_special: "<s>" in the text becomes BOS only when asked. */
    CHECK(tok_encode(t, "<s>hi", 5, false, true, &ids, &n) == CLLM_OK);
    CHECK(n >= 2 && ids[0] == 1);
    free(ids);
    CHECK(tok_encode(t, "<s>hi", 5, false, false, &ids, &n) == CLLM_OK);
    CHECK(n >= 2 && ids[0] != 1);
    free(ids);
    tok_free(t);
}

int main(void) {
    test_stories();
    test_mistral();
    CHECK_DONE();
}
