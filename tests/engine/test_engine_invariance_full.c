/* test_engine_invariance_full.c - the serving engine's batch-invariance guarantee at full size:
 * 32 requests with prompts of 1..1000 tokens and different sampling settings, submitted together
 * with staggered arrival, against each one alone: identical token ids and bitwise-identical
 * logits rows for every generated position. Then the same under a KV budget so small that
 * preemption happens, and with shared prefixes (prefix-cache hits) for max_batched_tokens 16,
 * 64 and 512. Every run checks the pool invariants after each step and that every block is back
 * in the pool at the end. Model: a tiny random BF16 Qwen2 with a 2048 context (argv[1]). */
#include "serving_util.h"

#define N 32
#define MAXLEN 1000

static int32_t prompts[2][N][MAXLEN];

/* Set 0: distinct prompts, lengths spread over 1..1000. Set 1: four groups sharing prefixes of
 * 100..550 tokens, each request with its own suffix. */
static void make_requests(int set, run_req *rq) {
    for (int i = 0; i < N; i++) {
        int32_t *p = prompts[set][i];
        int len;
        if (set == 0) {
            len = i == 0 ? 1 : i == 1 ? MAXLEN : 1 + (i * 331 + i * i * 17) % MAXLEN;
            for (int k = 0; k < len; k++)
                p[k] = 3 + (k * 37 + i * 101 + k * k * 7) % 509;
        } else {
            int g = i % 4, shared = 100 + 150 * g, own = 1 + (i * 7) % 60;
            len = shared + own;
            for (int k = 0; k < shared; k++)
                p[k] = 3 + (k * 53 + g * 11) % 509;
            for (int k = shared; k < len; k++)
                p[k] = 3 + (k * 29 + i * 13) % 509;
        }
        p[0] = 1;
        memset(&rq[i], 0, sizeof rq[i]);
        rq[i].prompt = p;
        rq[i].n_prompt = len;
        rq[i].max_tokens = 8 + (i * 13) % 33;
        rq[i].ignore_eos = i % 3 == 0;
        rq[i].submit_step = (i * 5) / 2;
        cllm_sampling_params sp = greedy();
        switch (i % 5) {
        case 0:
            break; /* greedy */
        case 1:
            sp = cllm_sampling_default_params(), sp.temperature = 0.9f;
            break;
        case 2:
            sp = cllm_sampling_default_params(), sp.temperature = 1.2f, sp.top_k = 20;
            break;
        case 3:
            sp = cllm_sampling_default_params(), sp.temperature = 0.7f, sp.top_p = 0.8f;
            sp.min_p = 0.05f, sp.repeat_penalty = 1.2f;
            break;
        default:
            sp = cllm_sampling_default_params(), sp.temperature = 1.0f, sp.top_k = 0;
            sp.top_p = 1.0f, sp.min_p = 0, sp.presence_penalty = 0.5f, sp.frequency_penalty = 0.3f;
        }
        if (i % 5) sp.seed = 7000 + (uint64_t)i;
        rq[i].sp = sp;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = 2;
    cllm_model *m;
    if (cllm_model_load(argv[1], &mp, &m)) {
        fprintf(stderr, "%s\n", cllm_last_error());
        return 1;
    }
    for (int set = 0; set < 2; set++) {
        run_req rq[N];
        make_requests(set, rq);
        /* Reference: each request alone, no prefix cache. */
        static run_out ref[N];
        for (int i = 0; i < N; i++) {
            cllm_engine_params ep = cllm_engine_default_params();
            ep.no_prefix_cache = 1;
            run_req one = rq[i];
            one.submit_step = 0;
            CHECK(run_engine(m, &ep, &one, 1, &ref[i], NULL) == 0);
            CHECK(ref[i].n_logits == ref[i].n && ref[i].n > 0);
        }
        /* set 0: default budget, then tiny KV (preemption); set 1: mbt 16 / 64 / 512 with the
         * prefix cache (hits), and tiny KV with the prefix cache. */
        for (int cfg = 0; cfg < (set ? 4 : 2); cfg++) {
            cllm_engine_params ep = cllm_engine_default_params();
            int tiny = set ? cfg == 3 : cfg == 1;
            ep.max_batched_tokens = set && cfg < 3 ? (int[]){16, 64, 512}[cfg] : 256;
            if (tiny) ep.kv_tokens = 80 * 16; /* the longest request alone needs 66 blocks */
            run_out outs[N];
            cllm_engine_stats st;
            CHECK(run_engine(m, &ep, rq, N, outs, &st) == 0);
            printf("set %d config %d (mbt %d, kv blocks %d): %lld preemptions, %lld prefix-hit "
                   "tokens, %lld tokens processed in %lld steps\n",
                   set, cfg, ep.max_batched_tokens, st.kv_blocks_total, (long long)st.preemptions,
                   (long long)st.prefix_hit_tokens, (long long)st.tokens_processed,
                   (long long)st.steps);
            if (tiny) CHECK_MSG(st.preemptions > 0, "no preemption (set %d)", set);
            if (set) CHECK_MSG(st.prefix_hit_tokens >= 1000, "too few prefix-cache hits");
            int bad = 0;
            for (int i = 0; i < N; i++)
                if (!run_same(&outs[i], &ref[i]) && bad++ < 3)
                    CHECK_MSG(0, "request %d (prompt %d) differs: set %d config %d", i,
                              rq[i].n_prompt, set, cfg);
            CHECK(bad == 0);
            run_outs_free(outs, N);
        }
        run_outs_free(ref, N);
    }
    cllm_model_free(m);
    CHECK_DONE();
}
