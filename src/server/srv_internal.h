/* srv_internal.h - the server's state, shared by the HTTP glue (srv_http.c), the engine bridge
 * (srv_job.c), the formatting (srv_format.c) and the routes (srv_routes.c). */
#ifndef CLLM_SERVER_SRV_INTERNAL_H
#define CLLM_SERVER_SRV_INTERNAL_H

#include "base/strbuf.h"
#include "server/server.h"
#include "server/srv_job.h"
#include "server/srv_metrics.h"

#include <pthread.h>
#include <stdatomic.h>

struct srv_server {
    srv_config cfg;
    char *host, *api_key, *model_name;
    struct MHD_Daemon *d;
    int port;
    atomic_int ready;
    cllm_model *m;
    const cllm_tokenizer *tok;
    cllm_engine *e;
    const cllm_chat_template *tmpl; /* the model's; NULL when it has none */
    int max_ctx;                    /* tokens per request (prompt + generated) */
    int kv_tokens;                  /* tokens in the KV pool */
    pthread_t engine_thread;
    bool engine_running;
    srv_metrics metrics;
    pthread_mutex_t jobs_mu;
    srv_job *jobs;
    atomic_ullong next_id;
    int share;              /* choices of one request in the engine at once */
    pthread_t watch_thread; /* srv_jobs_watch: clients gone or not reading */
    bool watch_running;
    atomic_int watch_stop;
};

#endif
