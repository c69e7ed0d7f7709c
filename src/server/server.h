/* server.h - the OpenAI-compatible HTTP server (`cllm serve`): libmicrohttpd with its thread pool
 * for connections, one serving engine on its own thread shared by every request.
 *
 *   srv_server *s;
 *   srv_create(&cfg, &s);              listening; /health says 503 (loading)
 *   ... load the model, create the engine ...
 *   srv_attach(s, model, engine, dir); engine thread started; /health says 200
 *   ... until a signal ...
 *   srv_free(s);                       stops the engine thread, finishes open requests, closes */
#ifndef CLLM_SERVER_SERVER_H
#define CLLM_SERVER_SERVER_H

#include "cllm.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct srv_config {
    const char *host; /* numeric IPv4 or IPv6 address (default 127.0.0.1) */
    int port;
    const char *api_key;    /* NULL: no authentication */
    const char *model_name; /* the id in /v1/models and responses */
    int64_t max_body;       /* request body limit in bytes */
    int max_queue;          /* requests waiting for the engine before 429 */
    int http_threads;       /* libmicrohttpd thread pool size */
    bool quiet;             /* no per-request log lines */
    int max_model_len;      /* the engine's per-request context limit (<= 0: the model's) */
    int max_seqs;           /* the engine's running sequences (<= 0: 64); n is shared against it */
    int read_timeout;       /* seconds a connection may idle in headers/body (<= 0: 30) */
    int write_timeout;      /* seconds a stream may make no progress (<= 0: 60) */
    int64_t max_buffered;   /* output bytes buffered per streamed request (<= 0: 1 MiB) */
} srv_config;

typedef struct srv_server srv_server;

/* Bind and start serving (every endpoint but /health and /metrics answers 503 until srv_attach).
 * The port actually bound (cfg->port may be 0) is in srv_port(). */
cllm_status srv_create(const srv_config *cfg, srv_server **out);
int srv_port(const srv_server *s);
/* Start serving with this model and engine (both stay owned by the caller, and must outlive the
 * server) and the model's chat template (when it has one); model_dir names the model in errors. */
cllm_status srv_attach(srv_server *s, cllm_model *m, cllm_engine *e, const char *model_dir);
/* Stop the engine thread, end every open request, stop listening and free. */
void srv_free(srv_server *s);

#endif
