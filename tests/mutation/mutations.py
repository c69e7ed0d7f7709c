"""The source mutations tests/mutation/run_mutations.py applies, one at a time, to a scratch copy.

Each is (name, file, original text, mutated text, CMake targets to rebuild, ctest regex of the
tests expected to see it). The original text must occur exactly once in the file. A mutation
"survives" when every selected test still passes - then the suite cannot see that bug."""

# Forward-pass mutations run against the three external oracles: the numpy reference on the tiny
# models (oracle_logits), llama.cpp's files and outputs (llamacpp_oracle, which also covers the
# GGUF path), llama2.c's goldens (cli_golden). gguf_models (cllm's GGUF path against cllm's HF
# path, ~1 min) is left out to keep the run short: it cannot see a bug both paths share.
FORWARD_TESTS = "^(oracle_logits|llamacpp_oracle|cli_golden)$"
FORWARD_TARGETS = ["cllm_cli", "gguf_dequant"]

MUTATIONS = [
    ("rmsnorm-eps-outside-sqrt", "src/kernels/ops.c",
     "float r = 1.0f / sqrtf(sum_sq(x, n) / (float)n + eps);",
     "float r = 1.0f / (sqrtf(sum_sq(x, n) / (float)n) + eps);",
     FORWARD_TARGETS, FORWARD_TESTS),
    ("sliding-window-admits-window+1", "src/kernels/attention_impl.h",
     "pos - a->window + 1 > 0 ? pos - a->window + 1 : 0",
     "pos - a->window > 0 ? pos - a->window : 0",
     FORWARD_TARGETS, FORWARD_TESTS),
    ("rope-theta-ignored", "src/model/model.c",
     "double f = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);",
     "double f = 1.0 / pow(10000.0, (2.0 * i) / c->head_dim);",
     FORWARD_TARGETS, FORWARD_TESTS),
    ("v-bias-dropped", "src/model/forward.c",
     "const float *qkv_b[3] = {L->bq, L->bk, L->bv};",
     "const float *qkv_b[3] = {L->bq, L->bk, NULL};",
     FORWARD_TARGETS, FORWARD_TESTS),
    ("gguf-llama-qk-permutation-wrong", "src/model/forward.c",
     "c->rope_adjacent ? kern_rope_adjacent : kern_rope;",
     "kern_rope;",
     FORWARD_TARGETS + ["gguf_logits"], "^(oracle_logits|llamacpp_oracle|cli_golden|gguf_models)$"),
    ("causal-mask-off-by-one", "src/kernels/attention_impl.h",
     "const int pos = a->pos[t];",
     "const int pos = a->pos[t] > 0 ? a->pos[t] - 1 : 0;",
     FORWARD_TARGETS, FORWARD_TESTS),
    ("gate-up-swapped", "src/model/forward.c",
     "const wmat *gu[2] = {&L->w_gate, &L->w_up};",
     "const wmat *gu[2] = {&L->w_up, &L->w_gate};",
     FORWARD_TARGETS, FORWARD_TESTS),
    ("sampler-ignores-top-p", "src/engine/sampler.c",
     "int use_p = p->top_p < 1;",
     "int use_p = 0;",
     ["test_sampler", "test_sampler_dist", "cllm_cli"], "^(test_sampler|test_sampler_dist|cli_golden)$"),
    ("prefix-hit-skips-token-compare", "src/kv/block_manager.c",
     "memcmp(bm->tokens + (size_t)b * bm->block_size, tokens, bytes) == 0)",
     "1)",
     ["test_block_manager", "test_block_manager_random", "test_engine_prefix"],
     "^(test_block_manager|test_block_manager_random|test_engine_prefix)$"),
    ("kv-block-freed-twice", "src/kv/block_manager.c",
     "        bm->free_stack[bm->n_free++] = b;\n    }\n}",
     "        bm->free_stack[bm->n_free++] = b;\n"
     "        if (bm->n_free < bm->n_blocks) bm->free_stack[bm->n_free++] = b;\n    }\n}",
     ["test_block_manager", "test_block_manager_random", "test_engine_prefix"],
     "^(test_block_manager|test_block_manager_random|test_engine_prefix)$"),
]
