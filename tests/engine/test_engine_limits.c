/* test_engine_limits.c - submit-time rejection (over the context, never fits in the KV pool, bad
 * ids) with the numbers in the message; cancellation of waiting and running requests frees their
 * blocks; text prompts and stop strings; submits from another thread while steps run. */
#include "serving_util.h"

#include <pthread.h>
#include <time.h>

static int contains(const char *s, const char *sub) {
    return strstr(s, sub) != NULL;
}

static void test_limits(cllm_model *m) {
    cllm_engine_params ep = cllm_engine_default_params();
    ep.kv_tokens = 64; /* 4 blocks */
    cllm_engine *e;
    CHECK(cllm_engine_create(m, &ep, &e) == CLLM_OK);
    static int32_t p[600];
    for (int i = 0; i < 600; i++)
        p[i] = 1 + i % 300;
    cllm_request r = cllm_request_default();
    cllm_request_id id;
    r.prompt = p;
    r.n_prompt = 500;
    r.max_tokens = 100;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_ERR_LIMIT);
    CHECK_MSG(contains(cllm_last_error(), "prompt 500 + max_tokens 100 > context 512"), "%s",
              cllm_last_error());
    r.n_prompt = 60;
    r.max_tokens = 20;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_ERR_LIMIT);
    CHECK_MSG(contains(cllm_last_error(), "prompt 60 + max_tokens 20 needs 5 KV blocks > 4"), "%s",
              cllm_last_error());
    r.n_prompt = 0;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_ERR_INVALID_ARG);
    p[3] = 512;
    r.n_prompt = 10;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_ERR_INVALID_ARG);
    CHECK(contains(cllm_last_error(), "token id 512"));
    p[3] = 4;
    r.max_tokens = -1;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_ERR_INVALID_ARG);
    CHECK(contains(cllm_last_error(), "max_tokens -1 < 0"));
    r.max_tokens = 54; /* 64 tokens: exactly the pool */
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_OK && id > 0);
    CHECK(cllm_engine_has_work(e));
    cllm_engine_free(e); /* with a request still queued: no leak */
}

static void test_cancel(cllm_model *m) {
    cllm_engine_params ep = cllm_engine_default_params();
    ep.kv_tokens = 256;
    ep.max_seqs = 2;
    ep.max_batched_tokens = 16;
    cllm_engine *e;
    CHECK(cllm_engine_create(m, &ep, &e) == CLLM_OK);
    int32_t p[40];
    for (int i = 0; i < 40; i++)
        p[i] = i ? 3 + (i * 41) % 500 : 1;
    cllm_request_id ids[4];
    for (int i = 0; i < 4; i++) {
        cllm_request r = cllm_request_default();
        r.prompt = p;
        r.n_prompt = (size_t)(20 + 5 * i);
        r.max_tokens = 50;
        r.ignore_eos = 1;
        CHECK(cllm_engine_submit(e, &r, &ids[i]) == CLLM_OK);
    }
    const cllm_event *ev;
    size_t n;
    for (int s = 0; s < 4; s++)
        CHECK(cllm_engine_step(e, &ev, &n) == CLLM_OK);
    cllm_engine_stats st;
    cllm_engine_get_stats(e, &st);
    CHECK(st.n_running == 2 && st.n_waiting == 2 && st.kv_blocks_used > 0);
    CHECK(cllm_engine_cancel(e, ids[0]) == CLLM_OK); /* running */
    CHECK(cllm_engine_cancel(e, ids[3]) == CLLM_OK); /* waiting */
    CHECK(cllm_engine_cancel(e, 12345) == CLLM_ERR_NOT_FOUND);
    int used_before = st.kv_blocks_used;
    CHECK(cllm_engine_step(e, &ev, &n) == CLLM_OK);
    int cancelled = 0;
    for (size_t k = 0; k < n; k++)
        if (ev[k].finished == CLLM_REASON_CANCELLED) {
            CHECK(ev[k].id == ids[0] || ev[k].id == ids[3]);
            CHECK(ev[k].token == -1);
            cancelled++;
        }
    CHECK(cancelled == 2);
    CHECK(cllm_engine_check(e) == CLLM_OK);
    cllm_engine_get_stats(e, &st);
    CHECK(st.n_running + st.n_waiting == 2);
    CHECK(st.kv_blocks_used < used_before + 2);
    CHECK(cllm_engine_cancel(e, ids[0]) == CLLM_ERR_NOT_FOUND);
    int finished = 0;
    while (cllm_engine_has_work(e)) {
        CHECK(cllm_engine_step(e, &ev, &n) == CLLM_OK);
        CHECK(cllm_engine_check(e) == CLLM_OK);
        for (size_t k = 0; k < n; k++)
            if (ev[k].finished) {
                CHECK(ev[k].finished == CLLM_REASON_LENGTH && ev[k].n_generated == 50);
                finished++;
            }
    }
    CHECK(finished == 2);
    cllm_engine_get_stats(e, &st);
    CHECK(st.kv_blocks_used == 0 && st.kv_blocks_free + st.kv_blocks_cached == 16);
    CHECK(cllm_engine_step(e, &ev, &n) == CLLM_OK && n == 0);
    cllm_engine_free(e);
}

/* A text prompt is tokenized with BOS (golden ids); a stop string ends generation before it. */
static void test_text_stop(cllm_model *m) {
    cllm_engine *e;
    CHECK(cllm_engine_create(m, NULL, &e) == CLLM_OK);
    const char *stops[2] = {"xyzzy", "named Lily"};
    cllm_request r = cllm_request_default();
    r.text = "Once upon a time";
    r.max_tokens = 100;
    r.stop = stops;
    r.n_stop = 2;
    cllm_request_id id;
    CHECK(cllm_engine_submit(e, &r, &id) == CLLM_OK);
    char text[2048] = "";
    size_t len = 0;
    int32_t first = -1;
    cllm_finish_reason why = CLLM_REASON_NONE;
    while (cllm_engine_has_work(e)) {
        const cllm_event *ev;
        size_t n;
        CHECK(cllm_engine_step(e, &ev, &n) == CLLM_OK);
        for (size_t k = 0; k < n; k++) {
            if (first < 0) first = ev[k].token;
            CHECK(ev[k].n_prompt == 5);
            memcpy(text + len, ev[k].text, ev[k].len);
            len += ev[k].len;
            if (ev[k].finished) why = ev[k].finished;
        }
    }
    text[len] = 0;
    CHECK(first == 432); /* golden: 1 403 407 261 378 -> 432 */
    CHECK(why == CLLM_REASON_STOP);
    CHECK_MSG(strcmp(text, ", there was a little girl ") == 0, "[%s]", text);
    cllm_engine_free(e);
}

typedef struct submitter {
    cllm_engine *e;
    int n_ok;
} submitter;

static void *submit_thread(void *arg) {
    submitter *t = arg;
    int32_t p[8] = {1, 403, 407, 261, 378, 5, 6, 7};
    for (int i = 0; i < 8; i++) {
        cllm_request r = cllm_request_default();
        r.prompt = p;
        r.n_prompt = (size_t)(1 + i % 8);
        r.max_tokens = 30;
        cllm_request_id id;
        if (cllm_engine_submit(t->e, &r, &id) == CLLM_OK) t->n_ok++;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_threads(cllm_model *m) {
    cllm_engine *e;
    CHECK(cllm_engine_create(m, NULL, &e) == CLLM_OK);
    submitter t = {e, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, submit_thread, &t) == 0);
    int finished = 0;
    for (int step = 0; finished < 8 && step < 1000000; step++) {
        const cllm_event *ev;
        size_t n;
        CHECK(cllm_engine_step(e, &ev, &n) == CLLM_OK);
        for (size_t k = 0; k < n; k++)
            finished += ev[k].finished != CLLM_REASON_NONE;
    }
    pthread_join(th, NULL);
    CHECK(t.n_ok == 8 && finished == 8);
    CHECK(cllm_engine_check(e) == CLLM_OK);
    cllm_engine_free(e);
}

int main(void) {
    cllm_model *m = load_stories(1);
    if (!m) return 1;
    test_limits(m);
    test_cancel(m);
    test_text_stop(m);
    test_threads(m);
    cllm_model_free(m);
    CHECK_DONE();
}
