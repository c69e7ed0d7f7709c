/* test_engine_chat_prefix.c - two chat turns through cllm_generate on one engine (what `cllm chat`
 * does): turn 2's prompt is turn 1's prompt + reply + a new user message, and the engine's
 * prefix-hit statistics show that turn 2 evaluates only the tokens that have no cached full KV
 * block: the old conversation's last partly filled block (at most block_size - 1 tokens that
 * already had KV), the reply's last token (sampled, never evaluated) and the new tokens. Turn 2's
 * reply is the same token for token as on a fresh engine (no cache), and the logits hook sees the
 * same bits. Also: a prompt-only request (max_tokens 0) and bad requests give clean errors. */
#include "serving_util.h"

#define N1 37
#define G1 20
#define NU 9

typedef struct {
    int32_t ids[RUN_MAX_TOKENS];
    int n;
    float last_row[RUN_VOCAB];
    int rows;
} turn_out;

static int on_token(void *user, const cllm_event *ev) {
    turn_out *t = user;
    if (ev->token >= 0 && t->n < RUN_MAX_TOKENS) t->ids[t->n++] = ev->token;
    return 0;
}

static void on_logits(void *user, cllm_request_id id, int index, const float *logits, int vocab) {
    turn_out *t = user;
    (void)id;
    (void)index;
    if (vocab == RUN_VOCAB) memcpy(t->last_row, logits, sizeof t->last_row);
    t->rows++;
}

static cllm_engine *engine(cllm_model *m, int block_size, int no_prefix_cache) {
    cllm_engine_params ep = cllm_engine_default_params();
    ep.kv_tokens = ep.max_model_len = 256;
    ep.block_size = block_size;
    ep.max_seqs = 1;
    ep.max_batched_tokens = 16; /* several prefill chunks */
    ep.no_prefix_cache = no_prefix_cache;
    cllm_engine *e = NULL;
    if (cllm_engine_create(m, &ep, &e)) fprintf(stderr, "%s\n", cllm_last_error());
    return e;
}

static int turn(cllm_engine *e, const int32_t *ids, int n, int max_tokens, turn_out *out,
                cllm_gen_stats *st) {
    memset(out, 0, sizeof *out);
    cllm_engine_set_logits_hook(e, on_logits, out);
    cllm_request r = cllm_request_default();
    r.prompt = ids;
    r.n_prompt = (size_t)n;
    r.max_tokens = max_tokens;
    r.ignore_eos = 1;
    return cllm_generate(e, &r, on_token, out, st) == CLLM_OK ? 0 : -1;
}

static void two_turns(cllm_model *m, int bs) {
    int32_t conv[N1 + G1 + NU];
    for (int i = 0; i < N1; i++)
        conv[i] = i ? 3 + (i * 53) % 500 : 1;
    cllm_engine *e = engine(m, bs, 0), *fresh = engine(m, bs, 1);
    CHECK(e && fresh);
    if (!e || !fresh) goto out;
    turn_out t1, t2, ref;
    cllm_gen_stats s1, s2, sr;
    CHECK(turn(e, conv, N1, G1, &t1, &s1) == 0 && t1.n == G1);
    CHECK(s1.n_prompt == N1 && s1.n_cached == 0 && s1.n_gen == G1);
    memcpy(conv + N1, t1.ids, sizeof(int32_t) * G1);
    for (int i = 0; i < NU; i++)
        conv[N1 + G1 + i] = 3 + (i * 71) % 500;
    int n2 = N1 + G1 + NU;
    cllm_engine_stats a, b;
    cllm_engine_get_stats(e, &a);
    CHECK(turn(e, conv, n2, 12, &t2, &s2) == 0);
    cllm_engine_get_stats(e, &b);
    /* Turn 1 wrote KV for the prompt and every reply token but the last: full blocks of those
     * are cached. */
    int had_kv = N1 + G1 - 1, hit = had_kv / bs * bs;
    int old_again = had_kv - hit; /* old tokens with KV evaluated again */
    CHECK_MSG(b.prefix_hit_tokens - a.prefix_hit_tokens == hit && s2.n_cached == hit,
              "bs %d: %lld hit tokens, expected %d", bs,
              (long long)(b.prefix_hit_tokens - a.prefix_hit_tokens), hit);
    CHECK(old_again <= bs - 1);
    /* rows through the model: the uncached prompt tokens, then one per decode step */
    CHECK_MSG(b.tokens_processed - a.tokens_processed == old_again + 1 + NU + (12 - 1),
              "bs %d: turn 2 processed %lld rows", bs,
              (long long)(b.tokens_processed - a.tokens_processed));
    CHECK(b.prompt_tokens - a.prompt_tokens == n2);
    /* Bitwise the same as without any cache. */
    CHECK(turn(fresh, conv, n2, 12, &ref, &sr) == 0 && sr.n_cached == 0);
    CHECK(ref.n == t2.n && memcmp(ref.ids, t2.ids, sizeof(int32_t) * (size_t)t2.n) == 0);
    CHECK(ref.rows == t2.rows && memcmp(ref.last_row, t2.last_row, sizeof ref.last_row) == 0);
    /* Prompt only: one logits row (the last prompt token's, as turn 2's first), no token. */
    turn_out p;
    cllm_gen_stats sp;
    CHECK(turn(fresh, conv, n2, 0, &p, &sp) == 0);
    CHECK(p.n == 0 && p.rows == 1 && sp.n_gen == 0 && sp.finish == CLLM_REASON_LENGTH);
    turn_out first;
    CHECK(turn(fresh, conv, n2, 1, &first, &sr) == 0 && first.rows == 1);
    CHECK(memcmp(p.last_row, first.last_row, sizeof p.last_row) == 0);
    CHECK(cllm_engine_check(e) == CLLM_OK);
out:
    cllm_engine_free(e);
    cllm_engine_free(fresh);
}

static void bad_requests(cllm_model *m) {
    cllm_engine *e = engine(m, 16, 0);
    CHECK(e != NULL);
    if (!e) return;
    int32_t ids[4] = {1, 2, 600, 4};
    turn_out t;
    cllm_gen_stats st;
    CHECK(turn(e, ids, 4, 4, &t, &st) < 0 && strstr(cllm_last_error(), "token id 600"));
    CHECK(turn(e, ids, 0, 4, &t, &st) < 0 && strstr(cllm_last_error(), "empty prompt"));
    CHECK(turn(e, ids, 2, 300, &t, &st) < 0 && strstr(cllm_last_error(), "context"));
    CHECK(turn(e, ids, 2, -1, &t, &st) < 0 && strstr(cllm_last_error(), "max_tokens"));
    /* an engine with another request queued is refused */
    cllm_request r = cllm_request_default();
    r.prompt = ids;
    r.n_prompt = 2;
    cllm_request_id id;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_OK);
    CHECK(turn(e, ids, 2, 4, &t, &st) < 0 && strstr(cllm_last_error(), "busy"));
    cllm_engine_free(e);
}

int main(void) {
    cllm_model *m = load_stories(2);
    if (!m) return 1;
    int sizes[3] = {16, 5, 1};
    for (int i = 0; i < 3; i++)
        two_turns(m, sizes[i]);
    bad_requests(m);
    cllm_model_free(m);
    CHECK_DONE();
}
