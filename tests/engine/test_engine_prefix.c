/* test_engine_prefix.c - prefix caching: a later request sharing a 48-token prefix is served
 * >= 48 tokens (block-aligned) from the cache and produces what it produces without the cache;
 * a fully cached prompt still recomputes its last token. */
#include "serving_util.h"

int main(void) {
    cllm_model *m = load_stories(1);
    if (!m) return 1;
    int32_t a[55], b[60];
    for (int k = 0; k < 55; k++)
        a[k] = k ? 3 + (k * 53) % 500 : 1;
    memcpy(b, a, sizeof(int32_t) * 48);
    for (int k = 48; k < 60; k++)
        b[k] = 3 + (k * 71) % 500;
    run_req rq[3] = {
        {.prompt = a, .n_prompt = 55, .max_tokens = 20, .submit_step = 0, .ignore_eos = 1},
        {.prompt = b, .n_prompt = 60, .max_tokens = 20, .submit_step = 30, .ignore_eos = 1},
        /* a's first 48 tokens: all 3 blocks cached, but only 2 may be taken (the last token is
         * recomputed for its logits). */
        {.prompt = a, .n_prompt = 48, .max_tokens = 20, .submit_step = 60, .ignore_eos = 1},
    };
    for (int i = 0; i < 3; i++)
        rq[i].sp = greedy();
    cllm_engine_params ep = cllm_engine_default_params();
    ep.no_prefix_cache = 1;
    run_out ref[3];
    for (int i = 0; i < 3; i++) {
        run_req one = rq[i];
        one.submit_step = 0;
        CHECK(run_engine(m, &ep, &one, 1, &ref[i], NULL) == 0);
    }
    ep.no_prefix_cache = 0;
    run_out outs[3];
    cllm_engine_stats st;
    CHECK(run_engine(m, &ep, rq, 3, outs, &st) == 0);
    CHECK(outs[0].n_cached == 0);
    CHECK_MSG(outs[1].n_cached >= 48 && outs[1].n_cached % 16 == 0, "b: %d cached",
              outs[1].n_cached);
    CHECK_MSG(outs[2].n_cached == 32, "a[:48]: %d cached", outs[2].n_cached);
    CHECK(st.prefix_hit_tokens == outs[1].n_cached + outs[2].n_cached);
    CHECK(st.prompt_tokens == 55 + 60 + 48);
    CHECK(st.tokens_processed == 55 + 60 + 48 - st.prefix_hit_tokens + 3 * 19);
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(outs[i].n == ref[i].n &&
                      memcmp(outs[i].tokens, ref[i].tokens, sizeof(int32_t) * ref[i].n) == 0 &&
                      memcmp(outs[i].logits, ref[i].logits,
                             sizeof(float) * RUN_VOCAB * (size_t)ref[i].n) == 0,
                  "request %d differs with prefix caching", i);
    }
    run_outs_free(outs, 3);
    run_outs_free(ref, 3);
    cllm_model_free(m);
    CHECK_DONE();
}
