/* test_engine_run.c - the engine driven by cllm_engine_run on its own thread while three other
 * threads submit (and cancel) requests concurrently: every request finishes exactly once with
 * the tokens it gets when run alone; cancelled ones end CANCELLED; stop returns; no block stays
 * used. Also log-probabilities (against a log-softmax of the hook's raw logits computed here in
 * double precision) and min_tokens (EOS masked until then). Model: stories260K. */
#include "serving_util.h"

#include <math.h>
#include <pthread.h>
#include <unistd.h>

#define N 24

typedef struct slot {
    int32_t tokens[RUN_MAX_TOKENS];
    int n, finished_events;
    cllm_finish_reason reason;
} slot;

static slot slots[N];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int32_t prompts[N][64];
static cllm_engine *eng;

static void on_event(void *user, const cllm_event *ev) {
    (void)user;
    slot *s = ev->user_data;
    pthread_mutex_lock(&mu);
    if (ev->token >= 0 && s->n < RUN_MAX_TOKENS) s->tokens[s->n++] = ev->token;
    if (ev->finished) {
        s->finished_events++;
        s->reason = ev->finished;
    }
    pthread_mutex_unlock(&mu);
}

static cllm_request make_req(int i) {
    cllm_request r = cllm_request_default();
    int len = 1 + (i * 7) % 60;
    prompts[i][0] = 1;
    for (int k = 1; k < len; k++)
        prompts[i][k] = 3 + (k * 31 + i * 17) % 500;
    r.prompt = prompts[i];
    r.n_prompt = (size_t)len;
    r.max_tokens = 10 + i % 20;
    r.ignore_eos = 1;
    if (i % 2) {
        r.sampling = cllm_sampling_default_params();
        r.sampling.temperature = 0.8f;
        r.sampling.seed = 100 + (uint64_t)i;
    }
    r.user_data = &slots[i];
    return r;
}

static void *submitter(void *arg) {
    int t = (int)(intptr_t)arg;
    for (int i = t; i < N; i += 3) {
        cllm_request r = make_req(i);
        cllm_request_id id;
        if (cllm_engine_submit(eng, &r, &id)) {
            fprintf(stderr, "submit %d: %s\n", i, cllm_last_error());
            continue;
        }
        if (i % 8 == 5) cllm_engine_cancel(eng, id); /* may race with its first steps */
        usleep(1000 * (unsigned)(i % 4));
    }
    return NULL;
}

static void *runner(void *arg) {
    (void)arg;
    cllm_engine_run(eng, on_event, NULL);
    return NULL;
}

typedef struct lp_ctx {
    float raw[RUN_MAX_TOKENS][RUN_VOCAB];
    int n;
} lp_ctx;

static void lp_hook(void *user, cllm_request_id id, int index, const float *logits, int vocab) {
    lp_ctx *c = user;
    if (index < RUN_MAX_TOKENS && vocab == RUN_VOCAB) {
        memcpy(c->raw[index], logits, sizeof(float) * RUN_VOCAB);
        c->n = index + 1;
    }
}

static void test_logprobs_min_tokens(cllm_model *m) {
    cllm_engine *e;
    cllm_engine_params ep = cllm_engine_default_params();
    CHECK(cllm_engine_create(m, &ep, &e) == 0);
    static lp_ctx lc;
    cllm_engine_set_logits_hook(e, lp_hook, &lc);
    cllm_request r = cllm_request_default();
    r.text = "Once upon a time";
    r.max_tokens = 40;
    r.min_tokens = 40; /* stories end with EOS well before 40 tokens here without it */
    r.logprobs = 1;
    r.top_logprobs = 5;
    r.sampling = cllm_sampling_default_params();
    r.sampling.temperature = 1.0f;
    r.sampling.seed = 9;
    cllm_request_id id;
    CHECK(cllm_engine_submit(e, &r, &id) == 0);
    int n = 0, bad_lp = 0, bad_top = 0;
    cllm_finish_reason why = 0;
    while (cllm_engine_has_work(e)) {
        const cllm_event *ev;
        size_t nev;
        CHECK(cllm_engine_step(e, &ev, &nev) == 0);
        for (size_t k = 0; k < nev; k++) {
            if (ev[k].token < 0) continue;
            const float *raw = lc.raw[n];
            double mx = -INFINITY, z = 0;
            for (int v = 0; v < RUN_VOCAB; v++)
                mx = raw[v] > mx ? raw[v] : mx;
            for (int v = 0; v < RUN_VOCAB; v++)
                z += exp(raw[v] - mx);
            double lse = mx + log(z);
            if (fabs(ev[k].logprob - (raw[ev[k].token] - lse)) > 1e-4) bad_lp++;
            if (ev[k].n_top != 5) bad_top++;
            for (int j = 0; j < ev[k].n_top; j++) {
                if (fabs(ev[k].top_logprobs[j] - (raw[ev[k].top_ids[j]] - lse)) > 1e-4) bad_top++;
                if (j && ev[k].top_logprobs[j] > ev[k].top_logprobs[j - 1]) bad_top++;
                /* nothing outside the list beats its last entry */
                if (j == ev[k].n_top - 1)
                    for (int v = 0; v < RUN_VOCAB; v++)
                        if (raw[v] > raw[ev[k].top_ids[j]]) {
                            int listed = 0;
                            for (int q = 0; q < ev[k].n_top; q++)
                                listed |= ev[k].top_ids[q] == v;
                            if (!listed) bad_top++;
                        }
            }
            CHECK_MSG(ev[k].token != 2, "EOS sampled at %d despite min_tokens", n);
            n++;
            if (ev[k].finished) why = ev[k].finished;
        }
    }
    CHECK(n == 40 && why == CLLM_REASON_LENGTH);
    CHECK_MSG(bad_lp == 0, "%d chosen-token logprobs differ from log-softmax", bad_lp);
    CHECK_MSG(bad_top == 0, "%d top-logprob problems", bad_top);
    cllm_engine_free(e);
}

int main(void) {
    cllm_model *m = load_stories(2);
    if (!m) return 1;
    /* Reference: each request alone through the step API. */
    static run_out ref[N];
    for (int i = 0; i < N; i++) {
        cllm_request r = make_req(i);
        run_req one = {.prompt = r.prompt,
                       .n_prompt = (int)r.n_prompt,
                       .max_tokens = r.max_tokens,
                       .sp = r.sampling,
                       .ignore_eos = 1};
        cllm_engine_params ep = cllm_engine_default_params();
        CHECK(run_engine(m, &ep, &one, 1, &ref[i], NULL) == 0);
    }
    cllm_engine_params ep = cllm_engine_default_params();
    ep.max_batched_tokens = 32;
    CHECK(cllm_engine_create(m, &ep, &eng) == 0);
    pthread_t run_th, sub[3];
    pthread_create(&run_th, NULL, runner, NULL);
    for (int t = 0; t < 3; t++)
        pthread_create(&sub[t], NULL, submitter, (void *)(intptr_t)t);
    for (int t = 0; t < 3; t++)
        pthread_join(sub[t], NULL);
    for (int spins = 0; spins < 60000; spins++) { /* at most ~60 s on a very slow machine */
        pthread_mutex_lock(&mu);
        int done = 0;
        for (int i = 0; i < N; i++)
            done += slots[i].finished_events > 0;
        pthread_mutex_unlock(&mu);
        if (done == N) break;
        usleep(1000);
    }
    cllm_engine_stop(eng);
    pthread_join(run_th, NULL);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        slot *s = &slots[i];
        CHECK_MSG(s->finished_events == 1, "request %d finished %d times", i, s->finished_events);
        if (s->reason == CLLM_REASON_CANCELLED) {
            cancelled++;
            CHECK(i % 8 == 5);
            CHECK(s->n <= ref[i].n &&
                  memcmp(s->tokens, ref[i].tokens, sizeof(int32_t) * s->n) == 0);
        } else {
            CHECK_MSG(s->n == ref[i].n && !memcmp(s->tokens, ref[i].tokens, sizeof(int32_t) * s->n),
                      "request %d: tokens differ from its run alone", i);
        }
    }
    CHECK(cancelled >= 1);
    cllm_engine_stats st;
    cllm_engine_get_stats(eng, &st);
    CHECK(st.n_running == 0 && st.n_waiting == 0);
    CHECK(cllm_engine_check(eng) == 0);
    /* Finished sequences give their blocks back at the next step: one more empty step. */
    const cllm_event *ev;
    size_t nev;
    CHECK(cllm_engine_step(eng, &ev, &nev) == 0 && nev == 0);
    cllm_engine_get_stats(eng, &st);
    CHECK_MSG(st.kv_blocks_used == 0, "%d blocks still used", st.kv_blocks_used);
    /* cancel of a finished request: not found */
    CHECK(cllm_engine_cancel(eng, 1) == CLLM_ERR_NOT_FOUND);
    cllm_engine_free(eng);
    run_outs_free(ref, N);
    test_logprobs_min_tokens(m);
    cllm_model_free(m);
    CHECK_DONE();
}
