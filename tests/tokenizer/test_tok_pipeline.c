/* test_tok_pipeline.c - each pipeline stage on small handmade tokenizer.json files: split
 * behaviors, Digits, Metaspace, ByteLevel, added-token flags, normalizers, decoders,
 * post-processors. Expected values follow HF tokenizers' documented semantics. */
#include "tok_json_util.h"

#define EXPECT(t, text, add, parse, want)                                                          \
    do {                                                                                           \
        const char *got_ = pieces(t, text, add, parse);                                            \
        CHECK_MSG(!strcmp(got_, want), "'%s' -> '%s', want '%s'", text, got_, want);               \
    } while (0)

static const char *const WORDS[] = {"a-",
                                    "b-",
                                    "-b",
                                    "-c",
                                    "--",
                                    "ab",
                                    "123",
                                    "\xE2\x96\x81",
                                    "\xE2\x96\x81hi",
                                    "\xE2\x96\x81there",
                                    "\xC4\xA0hi",
                                    "\xC4\xA0there",
                                    "<m>",
                                    "<r>",
                                    "<w>",
                                    "<x>",
                                    "hey",
                                    "abc",
                                    "a_b",
                                    "\xC3\xA9",
                                    "hi",
                                    "\xC3\xA2",
                                    "\xC4\xA4",
                                    "\xC2\xAC",
                                    NULL};

static tokenizer *with(const char *added, const char *norm, const char *pretok, const char *post,
                       const char *dec) {
    char *json = make_tokenizer_json(WORDS, added, norm, pretok, post, dec);
    tokenizer *t = load_json_text(json);
    free(json);
    CHECK(t != NULL);
    return t;
}

static void test_split_behaviors(void) {
    static const struct {
        const char *behavior, *want;
    } cases[] = {
        {"Isolated", "a|-|b|-|-|c"},         {"Removed", "a|b|c"},
        {"MergedWithPrevious", "a-|b-|-|c"}, {"MergedWithNext", "a|-b|-|-c"},
        {"Contiguous", "a|-|b|--|c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char pt[256];
        snprintf(pt, sizeof pt,
                 "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"%s\","
                 "\"invert\":false}",
                 cases[i].behavior);
        tokenizer *t = with(NULL, NULL, pt, NULL, NULL);
        if (t) EXPECT(t, "a-b--c", false, false, cases[i].want);
        tok_free(t);
    }
    tokenizer *t = with(NULL, NULL,
                        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"-\"},\"behavior\":"
                        "\"Removed\",\"invert\":true}",
                        NULL, NULL);
    if (t) EXPECT(t, "a-b--c", false, false, "-|-|-");
    tok_free(t);
}

static void test_digits_sequence(void) {
    tokenizer *t = with(NULL, NULL, "{\"type\":\"Digits\",\"individual_digits\":true}", NULL, NULL);
    if (t) EXPECT(t, "ab123", false, false, "ab|1|2|3");
    tok_free(t);
    t = with(NULL, NULL, "{\"type\":\"Digits\",\"individual_digits\":false}", NULL, NULL);
    if (t) EXPECT(t, "ab123c", false, false, "ab|123|c");
    tok_free(t);
    t = with(NULL, NULL,
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
             "{\"type\":\"Digits\",\"individual_digits\":true}]}",
             NULL, NULL);
    if (t) EXPECT(t, " ab12  hi ", false, false, "ab|1|2|hi");
    tok_free(t);
}

static void test_metaspace(void) {
    const char *added = "[{\"id\":500,\"content\":\"<x>\",\"special\":false,\"normalized\":false}]";
    tokenizer *t = with(added, NULL,
                        "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":"
                        "\"always\",\"split\":true}",
                        NULL, NULL);
    if (t) {
        EXPECT(t, "hi there", false, false, "\xE2\x96\x81hi|\xE2\x96\x81there");
        EXPECT(t, "hi<x>there", false, false, "\xE2\x96\x81hi|<x>|\xE2\x96\x81there");
    }
    tok_free(t);
    t = with(added, NULL,
             "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\","
             "\"split\":true}",
             NULL, NULL);
    if (t) EXPECT(t, "hi<x>there", false, false, "\xE2\x96\x81hi|<x>|t|h|e|r|e");
    tok_free(t);
    t = with(added, NULL,
             "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"never\","
             "\"split\":false}",
             NULL, NULL);
    if (t) EXPECT(t, "hi there", false, false, "h|i|\xE2\x96\x81|t|h|e|r|e");
    tok_free(t);
}

static void test_bytelevel(void) {
    tokenizer *t =
        with(NULL, NULL, "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}",
             NULL, "{\"type\":\"ByteLevel\"}");
    if (t) {
        EXPECT(t, "hi there", false, false, "\xC4\xA0hi|\xC4\xA0there");
        int32_t *ids;
        size_t n;
        char *text;
        CHECK(tok_encode(t, "hi there", 8, false, false, &ids, &n) == CLLM_OK);
        CHECK(tok_decode(t, ids, n, false, &text, NULL) == CLLM_OK);
        CHECK(!strcmp(text, " hi there"));
        free(text);
        free(ids);
    }
    tok_free(t);
}

static void test_added_flags(void) {
    const char *added =
        "[{\"id\":600,\"content\":\"<m>\",\"special\":true,\"lstrip\":true,\"normalized\":false},"
        "{\"id\":601,\"content\":\"<r>\",\"special\":false,\"rstrip\":true,\"normalized\":false},"
        "{\"id\":602,\"content\":\"<w>\",\"special\":false,\"single_word\":true,\"normalized\":"
        "false},"
        "{\"id\":603,\"content\":\"hey\",\"special\":false,\"normalized\":true},"
        "{\"id\":604,\"content\":\"<m><m>\",\"special\":false,\"normalized\":false}]";
    tokenizer *t = with(added, "{\"type\":\"Lowercase\"}", NULL, NULL, NULL);
    if (!t) return;
    EXPECT(t, "a  <m> b", false, true, "a|<m>| |b");
    EXPECT(t, "a  <m> b", false, false, "a| | |<|m|>| |b"); /* special, not parsed */
    EXPECT(t, "a <r>  b", false, false, "a| |<r>|b");
    EXPECT(t, "x<w> <w>", false, false, "x|<|w|>| |<w>");
    EXPECT(t, "HEY", false, false, "hey");
    EXPECT(t, "<m><m>", false, true, "<m><m>"); /* longest match first */
    CHECK(tok_is_special(t, 600) && !tok_is_special(t, 601));
    CHECK(tok_piece_to_id(t, "<w>") == 602);
    CHECK(tok_vocab_size(t) == 605);
    tok_free(t);
}

static void test_normalizers(void) {
    tokenizer *t =
        with(NULL,
             "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Strip\",\"strip_left\":true,"
             "\"strip_right\":true},{\"type\":\"Lowercase\"}]}",
             NULL, NULL, NULL);
    if (t) EXPECT(t, " \t ABC \n", false, false, "abc");
    tok_free(t);
    t = with(NULL, "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\"_\"}",
             NULL, NULL, NULL);
    if (t) EXPECT(t, "a \t b", false, false, "a_b");
    tok_free(t);
    t = with(NULL, "{\"type\":\"NFC\"}", NULL, NULL, NULL);
    if (t) EXPECT(t, "e\xCC\x81", false, false, "\xC3\xA9");
    tok_free(t);
    t = with(NULL, "{\"type\":\"Prepend\",\"prepend\":\"h\"}", NULL, NULL, NULL);
    if (t) {
        EXPECT(t, "i", false, false, "hi");
        EXPECT(t, "", false, false, "");
    }
    tok_free(t);
}

static void decode_is(const tokenizer *t, const char *const *ps, size_t n, bool skip,
                      const char *want) {
    int32_t ids[16];
    for (size_t i = 0; i < n; i++)
        ids[i] = tok_piece_to_id(t, ps[i]);
    char *text = NULL;
    size_t len;
    CHECK(tok_decode(t, ids, n, skip, &text, &len) == CLLM_OK);
    CHECK_MSG(text && !strcmp(text, want), "decode gave '%s', want '%s'", text ? text : "", want);
    CHECK(stream_matches(t, NULL, 0, ids, n, skip, text ? text : "", text ? len : 0));
    free(text);
}

static void test_decoders(void) {
    tokenizer *t = with(NULL, NULL, NULL, NULL,
                        "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{"
                        "\"String\":\"\\u2581\"},"
                        "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                        "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}");
    if (t) {
        const char *euro[] = {"\xE2\x96\x81hi", "<0xE2>", "<0x82>", "<0xAC>", "\xE2\x96\x81there"};
        decode_is(t, euro, 5, false, "hi\xE2\x82\xAC there");
        const char *bad[] = {"<0xE2>", "<0x82>", "a"}; /* incomplete: one U+FFFD per byte */
        decode_is(t, bad, 3, false,
                  "\xEF\xBF\xBD\xEF\xBF\xBD"
                  "a");
        const char *sp[] = {"<s>", "\xE2\x96\x81hi"};
        decode_is(t, sp, 2, false, "<s> hi");
    }
    tok_free(t);
    t = with(NULL, NULL, NULL, NULL,
             "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\"}");
    if (t) {
        const char *ms[] = {"\xE2\x96\x81hi", "\xE2\x96\x81there"};
        decode_is(t, ms, 2, false, "hi there");
    }
    tok_free(t);
    t = with(NULL, NULL, NULL, NULL, NULL); /* no decoder: joined with spaces */
    if (t) {
        const char *ws[] = {"hi", "ab"};
        decode_is(t, ws, 2, false, "hi ab");
    }
    tok_free(t);
    t = with(NULL, NULL, NULL, NULL, "{\"type\":\"ByteLevel\"}");
    if (t) {
        /* U+20AC as byte-level characters, split over three tokens; then an incomplete one */
        const char *bl[] = {"\xC3\xA2", "\xC4\xA4", "\xC2\xAC", "a", "\xC3\xA2"};
        decode_is(t, bl, 5, false,
                  "\xE2\x82\xAC"
                  "a\xEF\xBF\xBD");
    }
    tok_free(t);
}

static void test_post(void) {
    const char *added = "[{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"<"
                        "/s>\",\"special\":true}]";
    tokenizer *t =
        with(added, NULL, NULL,
             "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\","
             "\"type_id\":0}},"
             "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</"
             "s>\",\"type_id\":0}}],"
             "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},"
             "\"</s>\":{\"id\":\"</s>\",\"ids\":[2],\"tokens\":[\"</s>\"]}}}",
             NULL);
    if (t) {
        EXPECT(t, "hi", true, false, "<s>|hi|</s>");
        EXPECT(t, "hi", false, false, "hi");
        CHECK(tok_bos_id(t) == 1 && tok_eos_id(t) == 2);
        const char *sk[] = {"<s>", "hi", "</s>"};
        decode_is(t, sk, 3, true, "hi");
    }
    tok_free(t);
    t = with(added, NULL, NULL,
             "{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"},{\"type\":"
             "\"RobertaProcessing\","
             "\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",1]}]}",
             NULL);
    if (t) EXPECT(t, "hi", true, false, "<s>|hi|</s>");
    tok_free(t);
}

int main(void) {
    tmp_init();
    test_split_behaviors();
    test_digits_sequence();
    test_metaspace();
    test_bytelevel();
    test_added_flags();
    test_normalizers();
    test_decoders();
    test_post();
    tmp_cleanup();
    CHECK_DONE();
}
