/* srv_metrics.c - the server's Prometheus metrics: counters and histograms under one mutex,
 * rendered in the text exposition format together with the engine's statistics. */
#include "server/srv_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hist_init(srv_hist *h, const double *b, int n) {
    memset(h, 0, sizeof *h);
    h->n_bounds = n;
    memcpy(h->bounds, b, sizeof(double) * (size_t)n);
}

static void hist_add(srv_hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

void srv_metrics_init(srv_metrics *m) {
    static const double ttft[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80};
    static const double tpot[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
                                  0.15,  0.2,  0.3,   0.5,  1,     2.5};
    static const double e2e[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320};
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->ttft, ttft, (int)(sizeof ttft / sizeof ttft[0]));
    hist_init(&m->tpot, tpot, (int)(sizeof tpot / sizeof tpot[0]));
    hist_init(&m->e2e, e2e, (int)(sizeof e2e / sizeof e2e[0]));
}

void srv_metrics_destroy(srv_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void srv_metrics_request(srv_metrics *m, int status, double seconds) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_status && m->status[i] != status)
        i++;
    if (i == m->n_status && m->n_status < SRV_STATUS_MAX) m->status[m->n_status++] = status;
    if (i < m->n_status) m->status_count[i]++;
    if (status == 200) hist_add(&m->e2e, seconds);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_choice(srv_metrics *m, int n_gen, double ttft, double tpot) {
    pthread_mutex_lock(&m->mu);
    m->generation_tokens += (uint64_t)n_gen;
    if (ttft >= 0) hist_add(&m->ttft, ttft);
    if (tpot >= 0) hist_add(&m->tpot, tpot);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_prompt(srv_metrics *m, int n_prompt) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)n_prompt;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_cancelled(srv_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->cancelled++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct out {
    char *p;
    size_t len, cap;
    int oom;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = o->oom ? 0 : vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (o->oom || n < 0) return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

static void hist(out *o, const char *name, const char *help, const srv_hist *h) {
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        put(o, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
        (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->n);
}

static void one(out *o, const char *name, const char *type, const char *help, double v) {
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

char *srv_metrics_render(srv_metrics *m, cllm_engine *e, size_t *len) {
    out o = {malloc(4096), 0, 4096, 0};
    if (!o.p) return NULL;
    o.p[0] = 0;
    pthread_mutex_lock(&m->mu);
    put(&o, "# HELP cllm_requests_total HTTP requests by response status.\n"
            "# TYPE cllm_requests_total counter\n");
    for (int i = 0; i < m->n_status; i++)
        put(&o, "cllm_requests_total{status=\"%d\"} %llu\n", m->status[i],
            (unsigned long long)m->status_count[i]);
    one(&o, "cllm_requests_cancelled_total", "counter",
        "Completion requests cancelled because the client went away.", (double)m->cancelled);
    one(&o, "cllm_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.",
        (double)m->prompt_tokens);
    one(&o, "cllm_generation_tokens_total", "counter", "Generated tokens.",
        (double)m->generation_tokens);
    hist(&o, "cllm_time_to_first_token_seconds", "Time from arrival to the first token.", &m->ttft);
    hist(&o, "cllm_time_per_output_token_seconds", "Mean time per token after the first.",
         &m->tpot);
    hist(&o, "cllm_e2e_request_latency_seconds", "Time from arrival to response complete.",
         &m->e2e);
    pthread_mutex_unlock(&m->mu);
    if (e) {
        cllm_engine_stats st;
        cllm_engine_get_stats(e, &st);
        one(&o, "cllm_num_requests_running", "gauge", "Sequences in the running batch.",
            st.n_running);
        one(&o, "cllm_num_requests_waiting", "gauge", "Sequences waiting for the engine.",
            st.n_waiting);
        one(&o, "cllm_kv_blocks_total", "gauge", "KV cache blocks in the pool.",
            st.kv_blocks_total);
        one(&o, "cllm_kv_blocks_used", "gauge", "KV cache blocks held by live sequences.",
            st.kv_blocks_used);
        one(&o, "cllm_kv_blocks_cached", "gauge", "Free KV blocks kept for prefix-cache hits.",
            st.kv_blocks_cached);
        one(&o, "cllm_kv_blocks_free", "gauge", "Empty KV blocks.", st.kv_blocks_free);
        one(&o, "cllm_kv_cache_usage_ratio", "gauge", "Fraction of KV blocks held.",
            st.kv_blocks_total ? (double)st.kv_blocks_used / st.kv_blocks_total : 0);
        one(&o, "cllm_prefix_cache_hit_ratio", "gauge",
            "Prompt tokens served from the prefix cache / prompt tokens admitted.",
            st.prompt_tokens ? (double)st.prefix_hit_tokens / (double)st.prompt_tokens : 0);
        one(&o, "cllm_prefix_cache_hit_tokens_total", "counter",
            "Prompt tokens served from the prefix cache.", (double)st.prefix_hit_tokens);
        one(&o, "cllm_preemptions_total", "counter", "Sequences preempted (recomputed later).",
            (double)st.preemptions);
        one(&o, "cllm_engine_steps_total", "counter", "Engine steps (forward passes).",
            (double)st.steps);
    }
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
