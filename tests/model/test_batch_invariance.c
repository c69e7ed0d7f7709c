/* test_batch_invariance.c - the same prompt evaluated as one prefill batch, in chunks of 7, and
 * token by token must give bit-identical logits (every kernel's per-row arithmetic is
 * independent of the batch); checked for f32 and bf16 KV caches and 1 and 2 threads. */
#include "check.h"
#include "testdata.h"
#include "cllm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void keep_row(void *user, cllm_request_id id, int index, const float *logits, int vocab) {
    (void)id;
    (void)index;
    if (vocab == 512) memcpy(user, logits, 512 * sizeof(float));
}

/* The last prompt token's logits: a prompt-only request (max_tokens 0) on an engine that
 * evaluates at most n_batch tokens per step. */
static float *logits_for(cllm_model *m, int n_batch, cllm_kv_type kv, const int32_t *ids, int n) {
    cllm_engine_params ep = cllm_engine_default_params();
    ep.kv_tokens = ep.max_model_len = 64;
    ep.max_batched_tokens = n_batch;
    ep.kv_type = kv;
    ep.no_prefix_cache = 1;
    cllm_engine *e;
    if (cllm_engine_create(m, &ep, &e)) return NULL;
    float *out = calloc(512, sizeof(float));
    cllm_engine_set_logits_hook(e, keep_row, out);
    cllm_request r = cllm_request_default();
    r.prompt = ids;
    r.n_prompt = (size_t)n;
    r.max_tokens = 0;
    if (!out || cllm_generate(e, &r, NULL, NULL, NULL)) {
        fprintf(stderr, "%s\n", cllm_last_error());
        free(out);
        out = NULL;
    }
    cllm_engine_free(e);
    return out;
}

int main(void) {
    char path[4096];
    td_join(path, sizeof path, "stories260K-hf");
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (i * 37 + 11) % 512;
    ids[0] = 1;
    for (int threads = 1; threads <= 2; threads++) {
        cllm_model_params mp = cllm_model_default_params();
        mp.n_threads = threads;
        cllm_model *m;
        if (cllm_model_load(path, &mp, &m)) {
            fprintf(stderr, "%s\n", cllm_last_error());
            return 1;
        }
        cllm_kv_type kvs[2] = {CLLM_KV_F32, CLLM_KV_BF16};
        for (int k = 0; k < 2; k++) {
            float *a = logits_for(m, 512, kvs[k], ids, 40);
            float *b = logits_for(m, 7, kvs[k], ids, 40);
            float *c = logits_for(m, 1, kvs[k], ids, 40);
            CHECK(a && b && c);
            if (a && b && c) {
                CHECK_MSG(memcmp(a, b, 512 * sizeof(float)) == 0,
                          "chunks of 7 differ (threads %d kv %d)", threads, k);
                CHECK_MSG(memcmp(a, c, 512 * sizeof(float)) == 0,
                          "token by token differs (threads %d kv %d)", threads, k);
            }
            free(a);
            free(b);
            free(c);
        }
        cllm_model_free(m);
    }
    CHECK_DONE();
}
