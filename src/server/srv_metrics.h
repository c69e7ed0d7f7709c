/* srv_metrics.h - Prometheus counters and histograms of the server (requests by status, tokens,
 * time to first token, time per output token, end-to-end latency) plus the engine's gauges. */
#ifndef CLLM_SERVER_SRV_METRICS_H
#define CLLM_SERVER_SRV_METRICS_H

#include "cllm.h"

#include <pthread.h>
#include <stdint.h>

#define SRV_HIST_MAX 16
#define SRV_STATUS_MAX 24

typedef struct srv_hist {
    int n_bounds;
    double bounds[SRV_HIST_MAX];
    uint64_t counts[SRV_HIST_MAX + 1]; /* the last one: +Inf */
    double sum;
    uint64_t n;
} srv_hist;

typedef struct srv_metrics {
    pthread_mutex_t mu;
    int n_status;
    int status[SRV_STATUS_MAX];
    uint64_t status_count[SRV_STATUS_MAX];
    uint64_t prompt_tokens, generation_tokens, cancelled;
    srv_hist ttft, tpot, e2e;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int status, double seconds);
/* A finished choice: its tokens and timings (ttft/tpot < 0: not observed). */
void srv_metrics_choice(srv_metrics *m, int n_gen, double ttft, double tpot);
void srv_metrics_prompt(srv_metrics *m, int n_prompt);
void srv_metrics_cancelled(srv_metrics *m);
/* The Prometheus text exposition, malloc'd (engine may be NULL while loading). */
char *srv_metrics_render(srv_metrics *m, cllm_engine *e, size_t *len);

#endif
