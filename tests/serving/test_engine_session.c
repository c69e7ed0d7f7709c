/* test_engine_session.c - 8 concurrent greedy requests through the engine give, token for token,
 * what each gives alone through cllm_generate, and the llama2.c golden ids for the golden
 * prompts; the streamed text equals the one-shot decode of the generated ids. */
#include "serving_util.h"

#include <jansson.h>

#define N 8

/* Tokens of one generation via the callback (ids >= 0 only). */
typedef struct {
    int32_t *ids;
    int n;
} collect;
static int on_token(void *user, int32_t id, const char *text, size_t len) {
    (void)text;
    (void)len;
    collect *c = user;
    if (id >= 0) c->ids[c->n++] = id;
    return 0;
}

static int alone(cllm_model *m, const run_req *r, int32_t *out) {
    cllm_session *s;
    cllm_session_params sp = cllm_session_default_params();
    sp.n_ctx = 512;
    if (cllm_session_create(m, &sp, &s)) return -1;
    collect c = {out, 0};
    cllm_gen_params gp = {.max_tokens = r->max_tokens, .ignore_eos = r->ignore_eos};
    int rc = cllm_generate(s, r->prompt, (size_t)r->n_prompt, &r->sp, &gp, on_token, &c, NULL);
    cllm_session_free(s);
    return rc ? -1 : c.n;
}

int main(void) {
    cllm_model *m = load_stories(2);
    if (!m) return 1;
    const char *td = getenv("CLLM_TESTDATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/stories260K/golden.json", td ? td : "../shared/testdata");
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    CHECK(g != NULL);
    if (!g) return 1;
    json_t *cases = json_object_get(g, "cases");
    int n_golden = (int)json_array_size(cases);
    CHECK(n_golden >= 2 && n_golden <= 3);

    static int32_t prompts[N][128], golden[N][160];
    run_req rq[N];
    int n_gold_ids[N] = {0};
    for (int i = 0; i < N; i++) {
        memset(&rq[i], 0, sizeof rq[i]);
        rq[i].sp = greedy();
        rq[i].prompt = prompts[i];
        if (i < n_golden) {
            json_t *c = json_array_get(cases, (size_t)i);
            json_t *pid = json_object_get(c, "prompt_ids"), *ids = json_object_get(c, "ids");
            rq[i].n_prompt = (int)json_array_size(pid);
            for (int k = 0; k < rq[i].n_prompt; k++)
                prompts[i][k] = (int32_t)json_integer_value(json_array_get(pid, (size_t)k));
            n_gold_ids[i] = (int)json_array_size(ids);
            for (int k = 0; k < n_gold_ids[i]; k++)
                golden[i][k] = (int32_t)json_integer_value(json_array_get(ids, (size_t)k));
            /* run.c prints the token chosen at positions 0..127 whatever it is. */
            rq[i].max_tokens = n_gold_ids[i] - rq[i].n_prompt;
            rq[i].ignore_eos = 1;
        } else {
            rq[i].n_prompt = 1 + (i * 29) % 100;
            prompts[i][0] = 1;
            for (int k = 1; k < rq[i].n_prompt; k++)
                prompts[i][k] = 3 + (k * 37 + i * 101) % 500;
            rq[i].max_tokens = 10 + i * 13;
        }
        rq[i].submit_step = i % 3;
    }

    static int32_t ref[N][RUN_MAX_TOKENS];
    int n_ref[N];
    for (int i = 0; i < N; i++) {
        n_ref[i] = alone(m, &rq[i], ref[i]);
        CHECK(n_ref[i] > 0);
        if (i < n_golden) {
            CHECK_MSG(n_ref[i] + rq[i].n_prompt == n_gold_ids[i], "golden %d length", i);
            CHECK_MSG(memcmp(ref[i], golden[i] + rq[i].n_prompt, sizeof(int32_t) * n_ref[i]) == 0,
                      "session differs from golden %d", i);
        }
    }
    int mbts[3] = {7, 64, 512};
    for (int t = 0; t < 3; t++) {
        cllm_engine_params ep = cllm_engine_default_params();
        ep.max_batched_tokens = mbts[t];
        run_out outs[N];
        CHECK(run_engine(m, &ep, rq, N, outs, NULL) == 0);
        for (int i = 0; i < N; i++) {
            CHECK_MSG(outs[i].n == n_ref[i] &&
                          memcmp(outs[i].tokens, ref[i], sizeof(int32_t) * n_ref[i]) == 0,
                      "request %d (mbt %d): engine differs from session", i, mbts[t]);
            if (i < n_golden)
                CHECK_MSG(memcmp(outs[i].tokens, golden[i] + rq[i].n_prompt,
                                 sizeof(int32_t) * outs[i].n) == 0,
                          "request %d differs from golden", i);
            CHECK(outs[i].reason ==
                  (outs[i].n == rq[i].max_tokens ? CLLM_REASON_LENGTH : CLLM_REASON_STOP));
            /* decode(prompt + generated) == decode(prompt) + streamed text */
            int32_t all[700];
            memcpy(all, rq[i].prompt, sizeof(int32_t) * rq[i].n_prompt);
            memcpy(all + rq[i].n_prompt, outs[i].tokens, sizeof(int32_t) * outs[i].n);
            char *text, *head;
            size_t len, hlen;
            CHECK(cllm_detokenize(m, all, (size_t)(rq[i].n_prompt + outs[i].n), 1, &text, &len) ==
                      CLLM_OK &&
                  cllm_detokenize(m, all, (size_t)rq[i].n_prompt, 1, &head, &hlen) == CLLM_OK);
            CHECK_MSG(len == hlen + outs[i].text_len &&
                          memcmp(text + hlen, outs[i].text, outs[i].text_len) == 0,
                      "request %d: streamed text differs from decode: [%s] vs [%.*s]", i,
                      text + hlen, (int)outs[i].text_len, outs[i].text);
            cllm_free(text);
            cllm_free(head);
        }
        run_outs_free(outs, N);
    }
    json_decref(g);
    cllm_model_free(m);
    CHECK_DONE();
}
