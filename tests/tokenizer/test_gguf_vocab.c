/* test_gguf_vocab.c - llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf.inp/.out) encoded with
 * tokenizers loaded from the vocab-only GGUF files themselves; decode must give the text back. */
#include "tok_test_util.h"
#include <unistd.h>

/* argv[1..] may name vocabs to run (for debugging); by default all supported ones. */
static const char *const vocabs[] = {"gpt-2",        "llama-spm",      "phi-3",
                                     "deepseek-llm", "deepseek-coder", "falcon",
                                     "mpt",          "starcoder",      "refact"};

#define MAX_CASES 64
#define MAX_IDS 4096

static void run_vocab(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "ggml-vocab/ggml-vocab-%s.gguf", name);
    char *path = td_path(rel);
    tokenizer *t = NULL;
    cllm_status st = tok_load_gguf(path, &t);
    CHECK_MSG(st == CLLM_OK, "%s: %s", path, cllm_last_error());
    free(path);
    if (st != CLLM_OK) return;
    size_t inp_len, n_exp = 0, enc_ok = 0, rt_ok = 0;
    snprintf(rel, sizeof rel, "ggml-vocab/ggml-vocab-%s.gguf.inp", name);
    char *inp = td_read(rel, &inp_len);
    snprintf(rel, sizeof rel, "ggml-vocab/ggml-vocab-%s.gguf.out", name);
    char *out = td_read(rel, NULL);
    CHECK(inp && out);
    if (!inp || !out) goto done;
    char *strs[MAX_CASES];
    size_t lens[MAX_CASES];
    size_t n = split_inp(inp, inp_len, strs, lens, MAX_CASES);
    CHECK_MSG(n == 46, "%s: %zu cases", name, n);
    static int32_t want[MAX_IDS];
    char *op = out;
    for (size_t c = 0; c < n; c++) {
        size_t nw = parse_out_line(&op, want, MAX_IDS), ng = 0;
        int32_t *got = NULL;
        st = tok_encode(t, strs[c], lens[c], false, false, &got, &ng);
        CHECK_MSG(st == CLLM_OK, "%s case %zu: %s", name, c, cllm_last_error());
        n_exp++;
        bool same = st == CLLM_OK && ng == nw && (!nw || !memcmp(got, want, nw * sizeof *got));
        if (same) {
            enc_ok++;
        } else {
            fprintf(stderr, "%s case %zu '%.*s':\n  got ", name, c, (int)lens[c], strs[c]);
            for (size_t i = 0; i < ng; i++)
                fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n want");
            for (size_t i = 0; i < nw; i++)
                fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
            check_failures++;
        }
        CHECK_MSG(st != CLLM_OK || stream_matches(t, NULL, 0, got, ng, false, strs[c], lens[c]),
                  "%s case %zu: streaming decode differs", name, c);
        char *text = NULL;
        size_t tl = 0;
        if (st == CLLM_OK && tok_decode(t, got, ng, false, &text, &tl) == CLLM_OK &&
            tl == lens[c] && !memcmp(text, strs[c], tl))
            rt_ok++;
        else
            CHECK_MSG(0, "%s case %zu: decode gave '%.*s' for '%.*s'", name, c, (int)tl,
                      text ? text : "", (int)lens[c], strs[c]);
        free(text);
        free(got);
    }
done:
    printf("%-15s encode %zu/%zu, round trip %zu/%zu\n", name, enc_ok, n_exp, rt_ok, n_exp);
    free(inp);
    free(out);
    tok_free(t);
}

/* Encode `text` and compare with the expected ids. */
static void expect_ids(const char *name, const char *text, bool add_special, bool parse_special,
                       const int32_t *want, size_t nw) {
    char rel[256];
    snprintf(rel, sizeof rel, "ggml-vocab/ggml-vocab-%s.gguf", name);
    char *path = td_path(rel);
    tokenizer *t = NULL;
    int32_t *got = NULL;
    size_t ng = 0;
    CHECK_MSG(tok_load_gguf(path, &t) == CLLM_OK, "%s", cllm_last_error());
    free(path);
    if (!t) return;
    CHECK(tok_encode(t, text, strlen(text), add_special, parse_special, &got, &ng) == CLLM_OK);
    bool same = ng == nw && !memcmp(got, want, nw * sizeof *want);
    CHECK_MSG(same, "%s: '%s' (add_special %d, parse_special %d): %zu ids, first %d", name, text,
              add_special, parse_special, ng, ng ? got[0] : -1);
    free(got);
    tok_free(t);
}

/* Special tokens: BOS from add_bos_token, control tokens only with parse_special. */
static void test_specials(void) {
    expect_ids("llama-spm", "Hello", true, false, (const int32_t[]){1, 15043}, 2);
    expect_ids("llama-spm", "Hello", false, false, (const int32_t[]){15043}, 1);
    expect_ids("llama-spm", "<s>", false, true, (const int32_t[]){1}, 1);
    expect_ids("gpt-2", "Hello", true, false, (const int32_t[]){15496}, 1); /* no BOS */
    expect_ids("gpt-2", "<|endoftext|>", false, true, (const int32_t[]){50256}, 1);
    expect_ids("deepseek-llm", "Hello", true, false, (const int32_t[]){100000, 17464}, 2);
}

/* Real vocab files cut short anywhere must fail cleanly. */
static void test_truncated_real(void) {
    size_t len;
    char *buf = td_read("ggml-vocab/ggml-vocab-gpt-2.gguf", &len);
    CHECK(buf != NULL);
    if (!buf) return;
    const char *tmp = getenv("TMPDIR");
    char path[256];
    snprintf(path, sizeof path, "%s/cllm_gguf_trunc_%d.gguf", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    for (int k = 0; k < 24; k++) {
        size_t cut = k < 8 ? (size_t)k * 7 : len / 23 * (size_t)(k - 7) + (size_t)k;
        if (cut >= len) cut = len - 1;
        FILE *f = fopen(path, "wb");
        if (!f) break;
        fwrite(buf, 1, cut, f);
        fclose(f);
        tokenizer *t = NULL;
        cllm_status st = tok_load_gguf(path, &t);
        CHECK_MSG(st == CLLM_ERR_FORMAT && !t, "cut at %zu: status %d", cut, (int)st);
        CHECK(strstr(cllm_last_error(), path) != NULL);
        tok_free(t);
    }
    unlink(path);
    free(buf);
}

int main(int argc, char **argv) {
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            run_vocab(argv[i]);
    else
        for (size_t i = 0; i < sizeof vocabs / sizeof *vocabs; i++)
            run_vocab(vocabs[i]);

    test_specials();
    test_truncated_real();

    /* WordPiece must be refused clearly, never tokenized wrongly. */
    char *bert = td_path("ggml-vocab/ggml-vocab-bert-bge.gguf");
    tokenizer *t = NULL;
    cllm_status st = tok_load_gguf(bert, &t);
    CHECK(st == CLLM_ERR_UNSUPPORTED && !t);
    CHECK_MSG(strstr(cllm_last_error(), "WordPiece (bert) tokenizers are not supported"), "%s",
              cllm_last_error());
    free(bert);
    CHECK_DONE();
}
