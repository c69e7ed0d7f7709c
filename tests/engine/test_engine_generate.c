/* test_engine_generate.c - cllm_generate (one request on its own engine, as `cllm run` does)
 * gives the llama2.c golden ids for the golden prompts; 8 concurrent greedy requests through one
 * engine give, token for token, what each gives alone through cllm_generate; the streamed text
 * equals the one-shot decode of the generated ids; a callback that asks to stop cancels. */
#include "serving_util.h"

#include <jansson.h>
#include <stdbool.h>

#define N 8

/* Tokens of one generation via the callback (ids >= 0 only); stop after `limit` if > 0. */
typedef struct {
    int32_t *ids;
    int n, limit, calls_after_stop;
    bool stopped;
} collect;
static int on_token(void *user, const cllm_event *ev) {
    collect *c = user;
    if (c->stopped) c->calls_after_stop++;
    if (ev->token >= 0) c->ids[c->n++] = ev->token;
    if (c->limit > 0 && c->n == c->limit) c->stopped = true;
    return c->stopped;
}

/* The request alone on a fresh engine sized like `cllm run` sizes it. */
static int alone(cllm_model *m, const run_req *r, int32_t *out, int limit, cllm_gen_stats *st) {
    cllm_engine *e;
    cllm_engine_params ep = cllm_engine_default_params();
    ep.kv_tokens = ep.max_model_len = 512;
    ep.max_seqs = 1;
    if (cllm_engine_create(m, &ep, &e)) return -1;
    collect c = {out, 0, limit, 0, false};
    cllm_request rq = cllm_request_default();
    rq.prompt = r->prompt;
    rq.n_prompt = (size_t)r->n_prompt;
    rq.sampling = r->sp;
    rq.max_tokens = r->max_tokens;
    rq.ignore_eos = r->ignore_eos;
    int rc = cllm_generate(e, &rq, on_token, &c, st);
    CHECK(c.calls_after_stop == 0);
    cllm_engine_free(e);
    return rc ? -1 : c.n;
}

int main(void) {
    cllm_model *m = load_stories(2);
    if (!m) return 1;
    char path[4096];
    td_join(path, sizeof path, "stories260K/golden.json");
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
        cllm_gen_stats st;
        n_ref[i] = alone(m, &rq[i], ref[i], 0, &st);
        CHECK(n_ref[i] > 0);
        CHECK(st.n_gen == n_ref[i] && st.n_prompt == rq[i].n_prompt && st.n_cached == 0);
        CHECK(st.finish == (n_ref[i] == rq[i].max_tokens ? CLLM_REASON_LENGTH : CLLM_REASON_STOP));
        CHECK(st.finish != CLLM_REASON_STOP || st.eos);
        if (i < n_golden) {
            CHECK_MSG(n_ref[i] + rq[i].n_prompt == n_gold_ids[i], "golden %d length", i);
            CHECK_MSG(memcmp(ref[i], golden[i] + rq[i].n_prompt, sizeof(int32_t) * n_ref[i]) == 0,
                      "cllm_generate differs from golden %d", i);
        }
    }
    /* The callback stops the generation: cancelled after exactly 3 tokens, no more events. */
    {
        cllm_gen_stats st;
        int32_t few[RUN_MAX_TOKENS];
        CHECK(alone(m, &rq[0], few, 3, &st) == 3);
        CHECK(st.finish == CLLM_REASON_CANCELLED && memcmp(few, ref[0], 3 * sizeof(int32_t)) == 0);
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
                      "request %d (mbt %d): batched differs from alone", i, mbts[t]);
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
            char *text = NULL, *head = NULL;
            size_t len = 0, hlen = 0;
            int dec_ok =
                cllm_detokenize(m, all, (size_t)(rq[i].n_prompt + outs[i].n), 1, &text, &len) ==
                    CLLM_OK &&
                cllm_detokenize(m, all, (size_t)rq[i].n_prompt, 1, &head, &hlen) == CLLM_OK;
            CHECK(dec_ok);
            CHECK_MSG(dec_ok && len == hlen + outs[i].text_len &&
                          memcmp(text + hlen, outs[i].text, outs[i].text_len) == 0,
                      "request %d: streamed text differs from decode: [%s] vs [%.*s]", i,
                      dec_ok ? text + hlen : "", (int)outs[i].text_len, outs[i].text);
            cllm_free(text);
            cllm_free(head);
        }
        run_outs_free(outs, N);
    }
    json_decref(g);
    cllm_model_free(m);
    CHECK_DONE();
}
