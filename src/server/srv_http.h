/* srv_http.h - pieces of the HTTP glue the routes use: one connection's state and replies. */
#ifndef CLLM_SERVER_SRV_HTTP_H
#define CLLM_SERVER_SRV_HTTP_H

#include "server/srv_internal.h"

#include <microhttpd.h>

/* One HTTP request on a connection, from its headers to its completion. */
typedef struct srv_conn {
    srv_server *s;
    struct MHD_Connection *conn;
    char method[16], path[160];
    strbuf body;
    bool too_large;
    bool replied;      /* a reply was queued before the body ended */
    uint64_t received; /* body bytes received (kept or dropped) */
    double t0;
    int status;
    srv_job *job;
    strbuf sse;     /* streamed bytes ... */
    size_t sse_off; /* ... of which those before sse_off were handed to MHD */
} srv_conn;

/* Queue a reply; body (malloc'd, may be NULL on out of memory -> 500) is freed. */
enum MHD_Result srv_reply(srv_conn *c, int status, const char *content_type, char *body,
                          size_t len);
/* Queue an OpenAI-style error reply. */
enum MHD_Result srv_reply_error(srv_conn *c, const srv_error *e);
/* Reply with a JSON value (the reference is stolen). */
enum MHD_Result srv_reply_json(srv_conn *c, int status, json_t *v);

/* Routes other than completions (srv_routes.c): /v1/models[/ID], /health, /metrics, /tokenize,
 * /detokenize. Returns MHD_NO... only on a queueing failure, like every MHD handler. */
enum MHD_Result srv_route_models(srv_conn *c, const char *id);
enum MHD_Result srv_route_health(srv_conn *c);
enum MHD_Result srv_route_metrics(srv_conn *c);
enum MHD_Result srv_route_tokenize(srv_conn *c, bool detokenize);

#endif
