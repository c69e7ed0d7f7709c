/* test_tok_errors.c - malformed or unsupported tokenizer files and bad arguments give a clear
 * error (never a crash), and byte-level mutations of a valid file never crash the loader. */
#include "tok_json_util.h"

/* Load `json` as tokenizer.json; expect failure with `status` and a message containing `needle`. */
static void expect_fail(const char *json, cllm_status status, const char *needle) {
    const char *p = tmp_write("tokenizer.json", json, strlen(json));
    tokenizer *t = (tokenizer *)1;
    cllm_status st = tok_load_files(p, NULL, NULL, NULL, &t);
    CHECK_MSG(st == status, "got %d (%s), want %d for %.80s", st, cllm_last_error(), status, json);
    CHECK(t == NULL);
    CHECK_MSG(strstr(cllm_last_error(), needle) != NULL, "message '%s' lacks '%s'",
              cllm_last_error(), needle);
    tok_free(t);
}

#define MODEL(rest) "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2}" rest "}}"

static void test_bad_json(void) {
    expect_fail("{\"model\": {", CLLM_ERR_FORMAT, "invalid JSON");
    expect_fail("[1,2]", CLLM_ERR_FORMAT, "top level");
    expect_fail("{}", CLLM_ERR_FORMAT, "model");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":[]}}", CLLM_ERR_FORMAT, "vocab");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", CLLM_ERR_FORMAT, "vocab is empty");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"}}}", CLLM_ERR_FORMAT, "'a'");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}", CLLM_ERR_FORMAT, "'a'");
    expect_fail("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999999}}}", CLLM_ERR_FORMAT,
                "'a'");
    expect_fail(MODEL(",\"merges\":[\"a c\"]"), CLLM_ERR_FORMAT, "'c' is not in the vocab");
    expect_fail(MODEL(",\"merges\":[[\"b\",\"a\"]]"), CLLM_ERR_FORMAT, "'ba' is not in the vocab");
    expect_fail(MODEL(",\"merges\":[\"ab\"]"), CLLM_ERR_FORMAT, "not a pair");
    expect_fail(MODEL(",\"merges\":[[\"a\"]]"), CLLM_ERR_FORMAT, "not a pair");
    expect_fail(MODEL(",\"merges\":[[\"a\",3]]"), CLLM_ERR_FORMAT, "not a pair");
    expect_fail(MODEL(",\"merges\":{}"), CLLM_ERR_FORMAT, "merges must be an array");
    expect_fail(MODEL(",\"byte_fallback\":\"yes\""), CLLM_ERR_FORMAT, "byte_fallback");
    expect_fail(MODEL(",\"unk_token\":5"), CLLM_ERR_FORMAT, "unk_token");
    expect_fail(MODEL(",\"continuing_subword_prefix\":\"##\""), CLLM_ERR_UNSUPPORTED,
                "continuing_subword_prefix");
    expect_fail(MODEL(",\"end_of_word_suffix\":\"</w>\""), CLLM_ERR_UNSUPPORTED,
                "end_of_word_suffix");
    expect_fail(MODEL(",\"dropout\":0.1"), CLLM_ERR_UNSUPPORTED, "dropout");
    expect_fail("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}", CLLM_ERR_UNSUPPORTED,
                "WordPiece");
}

static void test_bad_stages(void) {
    static const char *const words[] = {NULL};
    static const struct {
        const char *added, *norm, *pretok, *post, *dec;
        cllm_status st;
        const char *needle;
    } cases[] = {
        {NULL, "{\"type\":\"BertNormalizer\"}", NULL, NULL, NULL, CLLM_ERR_UNSUPPORTED,
         "unsupported normalizer BertNormalizer"},
        {NULL, "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"\"}", NULL, NULL, NULL,
         CLLM_ERR_UNSUPPORTED, "Precompiled"},
        {NULL, "{\"no_type\":1}", NULL, NULL, NULL, CLLM_ERR_FORMAT, "normalizer"},
        {NULL, "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(\"},\"content\":\"x\"}", NULL, NULL,
         NULL, CLLM_ERR_UNSUPPORTED, "regex"},
        {NULL, "{\"type\":\"Replace\",\"pattern\":\"x\",\"content\":\"x\"}", NULL, NULL, NULL,
         CLLM_ERR_FORMAT, "pattern"},
        {NULL, "{\"type\":\"Sequence\",\"normalizers\":5}", NULL, NULL, NULL, CLLM_ERR_FORMAT,
         "normalizers"},
        {NULL, NULL, "{\"type\":\"BertPreTokenizer\"}", NULL, NULL, CLLM_ERR_UNSUPPORTED,
         "unsupported pre-tokenizer BertPreTokenizer"},
        {NULL, NULL,
         "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"Sideways\"}", NULL,
         NULL, CLLM_ERR_UNSUPPORTED, "Sideways"},
        {NULL, NULL, "{\"type\":\"Metaspace\",\"replacement\":\"ab\"}", NULL, NULL, CLLM_ERR_FORMAT,
         "one character"},
        {NULL, NULL, "{\"type\":\"Metaspace\",\"prepend_scheme\":\"sometimes\"}", NULL, NULL,
         CLLM_ERR_FORMAT, "prepend_scheme"},
        {NULL, NULL, "{\"type\":\"ByteLevel\",\"use_regex\":1}", NULL, NULL, CLLM_ERR_FORMAT,
         "use_regex"},
        {NULL, NULL, NULL, NULL, "{\"type\":\"WordPiece\"}", CLLM_ERR_UNSUPPORTED,
         "unsupported decoder WordPiece"},
        {NULL, NULL, NULL, NULL, "{\"type\":\"Strip\",\"content\":\" \",\"start\":-1}",
         CLLM_ERR_FORMAT, "start"},
        {NULL, NULL, NULL,
         "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"
         "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<s>\":{\"ids\":[100000]}}}",
         NULL, CLLM_ERR_FORMAT, "out of range"},
        {NULL, NULL, NULL,
         "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<q>\"}}]}", NULL,
         CLLM_ERR_FORMAT, "<q>"},
        {NULL, NULL, NULL, "{\"type\":\"Weird\"}", NULL, CLLM_ERR_UNSUPPORTED,
         "unsupported post_processor Weird"},
        {"{}", NULL, NULL, NULL, NULL, CLLM_ERR_FORMAT, "added_tokens"},
        {"[{\"id\":\"x\",\"content\":\"a\"}]", NULL, NULL, NULL, NULL, CLLM_ERR_FORMAT,
         "added token"},
        {"[{\"id\":5,\"content\":7}]", NULL, NULL, NULL, NULL, CLLM_ERR_FORMAT, "content"},
        {"[{\"id\":5,\"content\":\"x\",\"special\":\"no\"}]", NULL, NULL, NULL, NULL,
         CLLM_ERR_FORMAT, "special"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *json = make_tokenizer_json(words, cases[i].added, cases[i].norm, cases[i].pretok,
                                         cases[i].post, cases[i].dec);
        expect_fail(json, cases[i].st, cases[i].needle);
        free(json);
    }
}

static void test_files(void) {
    tokenizer *t = (tokenizer *)1;
    CHECK(tok_load_dir("/nonexistent/dir", &t) == CLLM_ERR_NOT_FOUND && t == NULL);
    CHECK(strstr(cllm_last_error(), "/nonexistent/dir") != NULL);
    CHECK(tok_load_files("/nonexistent/tokenizer.json", NULL, NULL, NULL, &t) != CLLM_OK &&
          t == NULL);
    CHECK(strstr(cllm_last_error(), "/nonexistent/tokenizer.json") != NULL);
    CHECK(tok_load_files(NULL, NULL, NULL, NULL, &t) == CLLM_ERR_INVALID_ARG);
    tok_free(NULL);
    tok_stream_free(NULL);

    /* vocab.json + merges.txt */
    const char *vj =
        tmp_write("vocab.json", "{\"a\":0,\"b\":1,\"ab\":2}", strlen("{\"a\":0,\"b\":1,\"ab\":2}"));
    const char *mt =
        tmp_write("merges.txt", "#version: 0.2\na c\n", strlen("#version: 0.2\na c\n"));
    CHECK(tok_load_files(NULL, vj, mt, NULL, &t) == CLLM_ERR_FORMAT && t == NULL);
    CHECK(strstr(cllm_last_error(), "'c' is not in the vocab") != NULL);
    mt = tmp_write("merges.txt", "a b c\n", strlen("a b c\n"));
    CHECK(tok_load_files(NULL, vj, mt, NULL, &t) == CLLM_ERR_FORMAT &&
          strstr(cllm_last_error(), "line 1"));
    mt = tmp_write("merges.txt", "#version: 0.2\na b\n", strlen("#version: 0.2\na b\n"));
    const char *cf = tmp_write("tokenizer_config.json", "{\"added_tokens_decoder\":{\"x\":{}}}",
                               strlen("{\"added_tokens_decoder\":{\"x\":{}}}"));
    CHECK(tok_load_files(NULL, vj, mt, cf, &t) == CLLM_ERR_FORMAT &&
          strstr(cllm_last_error(), "'x'"));
    cf = tmp_write("tokenizer_config.json", "{\"bos_token\":5}", strlen("{\"bos_token\":5}"));
    CHECK(tok_load_files(NULL, vj, mt, cf, &t) == CLLM_ERR_FORMAT &&
          strstr(cllm_last_error(), "bos_token"));
    cf = tmp_write("tokenizer_config.json", "{not json", strlen("{not json"));
    CHECK(tok_load_files(NULL, vj, mt, cf, &t) == CLLM_ERR_FORMAT &&
          strstr(cllm_last_error(), "tokenizer_config"));
    CHECK(tok_load_files(NULL, vj, mt, NULL, &t) == CLLM_OK);
    if (t) {
        CHECK(!strcmp(pieces(t, "ab", false, false), "ab"));
        tok_free(t);
    }
}

static void test_bad_input(void) {
    static const char *const words[] = {NULL};
    char *json = make_tokenizer_json(words, NULL, NULL, NULL, NULL, NULL);
    tokenizer *t = load_json_text(json);
    free(json);
    CHECK(t != NULL);
    if (!t) return;
    int32_t *ids = (int32_t *)1;
    size_t n = 5;
    CHECK(tok_encode(t, "a\xFF", 2, false, false, &ids, &n) == CLLM_ERR_INVALID_ARG &&
          ids == NULL && n == 0);
    CHECK(strstr(cllm_last_error(), "UTF-8") != NULL);
    CHECK(tok_encode(t, "\xE2\x82", 2, false, false, &ids, &n) == CLLM_ERR_INVALID_ARG);
    CHECK(tok_encode(t, "\xED\xA0\x80", 3, false, false, &ids, &n) ==
          CLLM_ERR_INVALID_ARG); /* surrogate */
    CHECK(tok_encode(t, NULL, 3, false, false, &ids, &n) == CLLM_ERR_INVALID_ARG);
    CHECK(tok_encode(t, "", 0, true, true, &ids, &n) == CLLM_OK && n == 0);
    free(ids);
    /* NUL bytes are text like any other. */
    CHECK(tok_encode(t, "a\0b", 3, false, false, &ids, &n) == CLLM_OK && n == 3);
    free(ids);
    /* Out-of-range ids decode to nothing, as in HF. */
    int32_t bad[] = {-5, 1 << 30, tok_piece_to_id(t, "a")};
    char *text;
    CHECK(tok_decode(t, bad, 3, false, &text, NULL) == CLLM_OK && !strcmp(text, "a"));
    free(text);
    CHECK(tok_id_to_piece(t, -1) == NULL && tok_id_to_piece(t, 1 << 30) == NULL);
    CHECK(!tok_is_special(t, -1));
    tok_stream *s;
    const char *out;
    size_t len;
    CHECK(tok_stream_create(t, false, &s) == CLLM_OK);
    CHECK(tok_stream_push(s, -7, &out, &len) == CLLM_OK && len == 0);
    CHECK(tok_stream_push(s, bad[2], &out, &len) == CLLM_OK && len == 1 && out[0] == 'a');
    CHECK(tok_stream_flush(s, &out, &len) == CLLM_OK && len == 0);
    tok_stream_free(s);
    tok_free(t);
}

/* Flip, drop and duplicate bytes of a valid file; every outcome must be a clean OK or error. */
static void test_mutations(void) {
    static const char *const words[] = {"ab", "\xE2\x96\x81", NULL};
    char *json = make_tokenizer_json(
        words, "[{\"id\":1,\"content\":\"<s>\",\"special\":true}]",
        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},{"
        "\"type\":\"NFC\"}]}",
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"\\\\s+\"},"
        "\"behavior\":\"MergedWithNext\"},{\"type\":\"Digits\",\"individual_digits\":true}]}",
        "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},{"
        "\"Sequence\":{\"id\":\"A\"}}],"
        "\"special_tokens\":{\"<s>\":{\"ids\":[1]}}}",
        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}");
    size_t len = strlen(json);
    /* Mutate only the pipeline part (before the long vocab) so most mutations hit something. */
    const char *vocab = strstr(json, "\"model\"");
    size_t span = vocab ? (size_t)(vocab - json) + 60 : len;
    char *m = malloc(len + 2);
    uint32_t rng = 12345;
    int ok = 0, failed = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(m, json, len + 1);
        size_t ml = len;
        for (int k = 0; k < 1 + it % 3; k++) {
            rng = rng * 1103515245u + 12345u;
            size_t pos = (rng >> 8) % span;
            switch ((rng >> 4) % 3) {
            case 0:
                m[pos] = (char)(rng >> 16);
                break;
            case 1:
                memmove(m + pos, m + pos + 1, ml - pos);
                ml--;
                break;
            default:
                m[pos] = m[(pos + 7) % span];
                break;
            }
        }
        const char *p = tmp_write("tokenizer.json", m, ml);
        tokenizer *t = NULL;
        if (tok_load_files(p, NULL, NULL, NULL, &t) == CLLM_OK) {
            ok++;
            int32_t *ids;
            size_t n;
            if (tok_encode(t, " ab 12 <s>\xE2\x82\xAC", 14, true, true, &ids, &n) == CLLM_OK) {
                char *text;
                if (tok_decode(t, ids, n, false, &text, NULL) == CLLM_OK) free(text);
                free(ids);
            }
            tok_free(t);
        } else {
            failed++;
            CHECK(t == NULL && cllm_last_error()[0] != 0);
        }
    }
    printf("mutations: %d loaded, %d rejected\n", ok, failed);
    free(m);
    free(json);
}

int main(void) {
    tmp_init();
    test_bad_json();
    test_bad_stages();
    test_files();
    test_bad_input();
    test_mutations();
    tmp_cleanup();
    CHECK_DONE();
}
