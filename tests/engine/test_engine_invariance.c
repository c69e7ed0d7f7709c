/* test_engine_invariance.c - batch invariance of the engine: each request's logits rows and
 * tokens (greedy and seeded sampling) are bitwise the same alone and in a batch of 8 with
 * staggered arrival, for max_batched_tokens 7 / 64 / 512, prefix caching on and off (with cache
 * hits), and under a KV budget so small that sequences are preempted and recomputed. */
#include "serving_util.h"

#define N 8

int main(void) {
    cllm_model *m = load_stories(2);
    if (!m) return 1;
    static int32_t prompts[N][200];
    run_req rq[N];
    int lens[N] = {1, 48 + 9, 130, 48 + 1, 5, 48 + 30, 77, 48 + 16};
    for (int i = 0; i < N; i++) {
        memset(&rq[i], 0, sizeof rq[i]);
        rq[i].prompt = prompts[i];
        rq[i].n_prompt = lens[i];
        prompts[i][0] = 1;
        for (int k = 1; k < lens[i]; k++)
            prompts[i][k] = 3 + (k * 37 + i * 101) % 500;
        /* Odd requests share a 48-token (3-block) prefix: cache hits when they arrive later. */
        if (i % 2)
            for (int k = 1; k < 48; k++)
                prompts[i][k] = 3 + (k * 53) % 500;
        rq[i].max_tokens = 8 + (i * 11) % 40;
        rq[i].sp = greedy();
        if (i >= 4) { /* seeded sampling, with penalties for some */
            rq[i].sp = cllm_sampling_default_params();
            rq[i].sp.temperature = 0.7f + 0.1f * (float)i;
            rq[i].sp.seed = 1000 + (uint64_t)i;
            if (i >= 6) rq[i].sp.repeat_penalty = 1.3f, rq[i].sp.frequency_penalty = 0.2f;
            if (i == 7) rq[i].sp.top_k = 0, rq[i].sp.top_p = 1.0f, rq[i].sp.min_p = 0;
        }
        rq[i].ignore_eos = i % 3 == 0;
        rq[i].submit_step = (int[]){0, 0, 1, 3, 4, 6, 9, 14}[i];
    }

    /* Reference: each request alone, the whole prompt in one chunk, no prefix cache. */
    run_out ref[N];
    for (int i = 0; i < N; i++) {
        cllm_engine_params ep = cllm_engine_default_params();
        ep.no_prefix_cache = 1;
        run_req one = rq[i];
        one.submit_step = 0;
        CHECK(run_engine(m, &ep, &one, 1, &ref[i], NULL) == 0);
        CHECK(ref[i].n_logits == ref[i].n && ref[i].n > 0);
    }

    int mbts[3] = {7, 64, 512};
    int64_t hits = 0;
    for (int t = 0; t < 3; t++)
        for (int pc = 0; pc < 2; pc++) {
            cllm_engine_params ep = cllm_engine_default_params();
            ep.max_batched_tokens = mbts[t];
            ep.no_prefix_cache = !pc;
            run_out outs[N];
            cllm_engine_stats st;
            CHECK(run_engine(m, &ep, rq, N, outs, &st) == 0);
            if (!pc) CHECK(st.prefix_hit_tokens == 0);
            hits += st.prefix_hit_tokens;
            for (int i = 0; i < N; i++)
                CHECK_MSG(run_same(&outs[i], &ref[i]), "request %d differs (mbt %d, prefix %d)", i,
                          mbts[t], pc);
            run_outs_free(outs, N);
        }
    CHECK_MSG(hits >= 48, "no prefix-cache hits (%lld)", (long long)hits);

    /* 11..14 blocks of 16 tokens: the longest request (130 + 41) needs 11 alone, so concurrent
     * ones run out and get preempted. */
    for (int cfg = 0; cfg < 8; cfg++) {
        int pc = cfg & 1, blocks = 11 + 3 * ((cfg >> 1) & 1), mbt = cfg & 4 ? 7 : 64;
        cllm_engine_params ep = cllm_engine_default_params();
        ep.kv_tokens = blocks * 16;
        ep.max_batched_tokens = mbt;
        ep.no_prefix_cache = !pc;
        run_out outs[N];
        cllm_engine_stats st;
        CHECK(run_engine(m, &ep, rq, N, outs, &st) == 0);
        CHECK_MSG(st.preemptions > 0, "no preemption happened (config %d)", cfg);
        printf("tiny KV (%d blocks, mbt %d, prefix %d): %lld preemptions, %lld hit tokens\n",
               blocks, mbt, pc, (long long)st.preemptions, (long long)st.prefix_hit_tokens);
        for (int i = 0; i < N; i++)
            CHECK_MSG(run_same(&outs[i], &ref[i]),
                      "request %d differs under preemption (config %d)", i, cfg);
        run_outs_free(outs, N);
    }
    run_outs_free(ref, N);
    cllm_model_free(m);
    CHECK_DONE();
}
