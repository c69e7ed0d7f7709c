/* srv_http.c - libmicrohttpd glue: the daemon (epoll + thread pool, suspend/resume), request
 * bodies with a size limit, API-key check, routing, the completion endpoints (waiting by
 * suspending the connection; streaming through a content reader), one log line per request,
 * and the server's lifetime with the engine thread. */
#include "server/srv_http.h"

#include "base/clock.h"
#include "base/error.h"
#include "server/srv_format.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum MHD_Result srv_reply(srv_conn *c, int status, const char *content_type, char *body,
                          size_t len) {
    if (!body) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";
        status = 500;
        content_type = "application/json";
        body = strdup(oom);
        len = body ? strlen(body) : 0;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type);
    if (status == 405) MHD_add_response_header(r, "Allow", c->method[0] == 'G' ? "POST" : "GET");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    c->status = status;
    enum MHD_Result ok = MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result srv_reply_error(srv_conn *c, const srv_error *e) {
    size_t n;
    char *s = srv_fmt_error(e, &n);
    return srv_reply(c, e->status, "application/json", s, n);
}

enum MHD_Result srv_reply_json(srv_conn *c, int status, json_t *v) {
    size_t n;
    char *s = srv_fmt_json(v, &n);
    return srv_reply(c, status, "application/json", s, n);
}

static enum MHD_Result fail(srv_conn *c, int status, const char *type, const char *code,
                            const char *msg) {
    srv_error e;
    srv_fail(&e, status, type, NULL, code, "%s", msg);
    return srv_reply_error(c, &e);
}

static void wake_conn(void *ctx) {
    MHD_resume_connection(ctx);
}

/* MHD content reader of a streamed completion. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_conn *c = cls;
    srv_job *j = c->job;
    pthread_mutex_lock(&j->mu);
    if (c->sse_off == c->sse.len) {
        c->sse_off = 0;
        sb_clear(&c->sse);
        if (!srv_fmt_stream(j, &c->sse)) {
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t n = c->sse.len - c->sse_off;
    if (n) {
        if (n > max) n = max;
        memcpy(buf, c->sse.p + c->sse_off, n);
        c->sse_off += n;
        pthread_mutex_unlock(&j->mu);
        return (ssize_t)n;
    }
    if (j->stream_done) {
        pthread_mutex_unlock(&j->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing yet: sleep until the engine thread has more (it resumes us, see srv_job.c). */
    MHD_suspend_connection(c->conn);
    j->suspended = true;
    pthread_mutex_unlock(&j->mu);
    return 0;
}

/* A non-streamed job: reply once every choice finished, else wait (suspended). */
static enum MHD_Result finish_or_wait(srv_conn *c) {
    srv_job *j = c->job;
    pthread_mutex_lock(&j->mu);
    if (j->n_unfinished > 0) {
        MHD_suspend_connection(c->conn);
        j->suspended = true;
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    const char *err = NULL;
    for (int i = 0; i < j->n && !err; i++)
        if (j->ch[i].finish == CLLM_REASON_ERROR || j->ch[i].finish == CLLM_REASON_CANCELLED)
            err = j->ch[i].error[0] ? j->ch[i].error : "generation failed";
    size_t n = 0;
    char *body = err ? NULL : srv_fmt_response(j, &n);
    srv_error e;
    bool down = err && j->ch[0].finish == CLLM_REASON_CANCELLED;
    if (err) srv_fail(&e, down ? 503 : 500, "server_error", NULL, NULL, "%s", err);
    pthread_mutex_unlock(&j->mu);
    return err ? srv_reply_error(c, &e) : srv_reply(c, 200, "application/json", body, n);
}

static enum MHD_Result completions(srv_conn *c, srv_kind kind) {
    srv_server *s = c->s;
    srv_request req;
    srv_error e;
    if (!srv_request_parse(kind, c->body.p ? c->body.p : "", c->body.len, &req, &e))
        return srv_reply_error(c, &e);
    if (req.model && strcmp(req.model, s->model_name)) {
        srv_fail(&e, 404, "invalid_request_error", "model", "model_not_found",
                 "The model '%s' does not exist (this server has '%s')", req.model, s->model_name);
        srv_request_free(&req);
        return srv_reply_error(c, &e);
    }
    srv_job *j = srv_job_create(s, &req, &e);
    if (!j) return srv_reply_error(c, &e);
    j->wake = wake_conn;
    j->wake_ctx = c->conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&j->mu);
    j->fd = ci ? (int)ci->connect_fd : -1; /* for srv_jobs_watch */
    pthread_mutex_unlock(&j->mu);
    if (!srv_job_submit(j, &e)) {
        srv_job_release(j);
        return srv_reply_error(c, &e);
    }
    c->job = j;
    if (!j->req.stream) return finish_or_wait(c);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_stream, c, NULL);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    /* a stream may wait this long for a client that does not read (srv_jobs_watch also cancels
     * its generation then) */
    MHD_set_connection_option(c->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)s->cfg.write_timeout);
    c->status = 200;
    enum MHD_Result ok = MHD_queue_response(c->conn, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* Constant-time comparison of the whole Authorization header value (its length included, so a
 * NUL inside it is a mismatch) with "Bearer KEY". */
static bool authorized(srv_conn *c) {
    const char *key = c->s->api_key;
    if (!key) return true;
    const char *h = NULL;
    size_t a = 0, b = strlen(key);
    if (MHD_lookup_connection_value_n(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
                                      strlen(MHD_HTTP_HEADER_AUTHORIZATION), &h, &a) != MHD_YES ||
        !h || a < 7 || memcmp(h, "Bearer ", 7))
        return false;
    h += 7;
    a -= 7;
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)(key[i] ^ (i < a ? h[i] : 0));
    return diff == 0;
}

static enum MHD_Result route(srv_conn *c) {
    srv_server *s = c->s;
    bool get = !strcmp(c->method, "GET"), post = !strcmp(c->method, "POST");
    const char *p = c->path;
    static const char *const posts[] = {"/v1/chat/completions", "/v1/completions", "/tokenize",
                                        "/detokenize"};
    static const char *const gets[] = {"/v1/models", "/health", "/metrics"};
    int route = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(p, posts[i])) route = i;
    for (int i = 0; i < 3; i++)
        if (!strcmp(p, gets[i])) route = 4 + i;
    bool model_id = !strncmp(p, "/v1/models/", 11) && p[11];
    if (route < 0 && !model_id)
        return fail(c, 404, "invalid_request_error", "not_found", "Unknown path");
    if ((route >= 0 && route < 4 && !post) || ((route >= 4 || model_id) && !get))
        return fail(c, 405, "invalid_request_error", "method_not_allowed",
                    "Method not allowed for this path");
    if (route != 5 && !authorized(c))
        return fail(c, 401, "invalid_request_error", "invalid_api_key",
                    "Incorrect or missing API key (Authorization: Bearer KEY)");
    if (c->too_large) {
        srv_error e;
        srv_fail(&e, 413, "invalid_request_error", NULL, "request_too_large",
                 "request body is larger than %lld bytes (--max-body)", (long long)s->cfg.max_body);
        return srv_reply_error(c, &e);
    }
    if (route == 5) return srv_route_health(c);
    if (route == 6) return srv_route_metrics(c);
    if (!atomic_load(&s->ready))
        return fail(c, 503, "server_error", "loading", "The model is still loading");
    switch (route) {
    case 0:
        return completions(c, SRV_CHAT);
    case 1:
        return completions(c, SRV_COMPLETION);
    case 2:
    case 3:
        return srv_route_tokenize(c, route == 3);
    default:
        return srv_route_models(c, model_id ? p + 11 : NULL);
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    srv_conn *c = *con_cls;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        c->s = cls;
        c->conn = conn;
        c->t0 = clock_now();
        snprintf(c->method, sizeof c->method, "%s", method);
        snprintf(c->path, sizeof c->path, "%s", url);
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        c->received += *upload_size;
        if (c->too_large || c->body.len + *upload_size > (size_t)c->s->cfg.max_body ||
            sb_append(&c->body, upload, *upload_size) != CLLM_OK)
            c->too_large = true; /* keep reading (and dropping) so the client gets the 413 */
        *upload_size = 0;
        /* ... but not without end (a chunked body of 2^64 bytes): past twice the limit plus
         * 16 MiB, reply now (413, or 401/404/405 first); MHD then closes the connection. */
        if (c->too_large && !c->replied &&
            c->received > 2 * (uint64_t)c->s->cfg.max_body + (16u << 20)) {
            c->replied = true;
            return route(c);
        }
        return MHD_YES;
    }
    if (c->replied) return MHD_YES;
    if (c->job) return finish_or_wait(c); /* resumed: the engine finished the job */
    return route(c);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)conn;
    srv_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) return;
    *con_cls = NULL;
    double ms = (clock_now() - c->t0) * 1e3;
    int n_prompt = 0, n_gen = 0;
    if (c->job) {
        pthread_mutex_lock(&c->job->mu);
        n_prompt = (int)c->job->n_prompt;
        for (int i = 0; i < c->job->n; i++)
            n_gen += c->job->ch[i].n_gen;
        pthread_mutex_unlock(&c->job->mu);
        srv_job_release(c->job);
    }
    srv_metrics_request(&s->metrics, c->status, ms / 1e3);
    if (!s->cfg.quiet)
        fprintf(stderr, "cllm: %s %s %d %d+%d tokens %.1f ms%s\n", c->method, c->path, c->status,
                n_prompt, n_gen, ms,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    sb_free(&c->body);
    sb_free(&c->sse);
    free(c);
}

cllm_status srv_create(const srv_config *cfg, srv_server **out) {
    *out = NULL;
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return err_set(CLLM_ERR_NOMEM, "out of memory");
    s->cfg = *cfg;
    if (s->cfg.read_timeout <= 0) s->cfg.read_timeout = 30;
    if (s->cfg.write_timeout <= 0) s->cfg.write_timeout = 60;
    if (s->cfg.max_buffered <= 0) s->cfg.max_buffered = 1 << 20;
    int max_seqs = s->cfg.max_seqs > 0 ? s->cfg.max_seqs : 64;
    s->share = max_seqs / 8 > 0 ? max_seqs / 8 : 1;
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->api_key = cfg->api_key ? strdup(cfg->api_key) : NULL;
    s->model_name = strdup(cfg->model_name ? cfg->model_name : "cllm");
    srv_metrics_init(&s->metrics);
    pthread_mutex_init(&s->jobs_mu, NULL);
    atomic_init(&s->ready, 0);
    atomic_init(&s->next_id, 1);
    atomic_init(&s->watch_stop, 0);
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr *sa = (struct sockaddr *)&a4;
    if (inet_pton(AF_INET, s->host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, s->host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        srv_free(s);
        return err_set(CLLM_ERR_INVALID_ARG, "--host: '%s' is not a numeric IPv4/IPv6 address",
                       cfg->host);
    }
    s->d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 4),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->cfg.read_timeout, MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->d) {
        srv_free(s);
        return err_set(CLLM_ERR_IO, "cannot listen on %s port %d", cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return CLLM_OK;
}

int srv_port(const srv_server *s) {
    return s->port;
}

/* Every 10 ms: clients that went away or stopped reading (srv_jobs_watch). */
static void *watch_main(void *arg) {
    srv_server *s = arg;
    while (!atomic_load(&s->watch_stop)) {
        srv_jobs_watch(s);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *engine_main(void *arg) {
    srv_server *s = arg;
    cllm_engine_run(s->e, srv_job_on_event, s);
    return NULL;
}

cllm_status srv_attach(srv_server *s, cllm_model *m, cllm_engine *e, const char *model_dir) {
    s->m = m;
    s->e = e;
    s->tok = cllm_model_tokenizer(m);
    if (!s->tok) return err_set(CLLM_ERR_NOT_FOUND, "%s: the server needs a tokenizer", model_dir);
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    cllm_engine_stats st;
    cllm_engine_get_stats(e, &st);
    s->max_ctx = info.max_ctx; /* what the engine enforces: --max-model-len caps the model's */
    if (s->cfg.max_model_len > 0 && s->cfg.max_model_len < s->max_ctx)
        s->max_ctx = s->cfg.max_model_len;
    s->kv_tokens = st.kv_blocks_total * st.block_size;
    cllm_status cs = cllm_tokenizer_chat_template(s->tok, &s->tmpl);
    if (cs && cs != CLLM_ERR_NOT_FOUND) return cs;
    if (pthread_create(&s->engine_thread, NULL, engine_main, s))
        return err_set(CLLM_ERR_INTERNAL, "cannot start the engine thread");
    s->engine_running = true;
    if (pthread_create(&s->watch_thread, NULL, watch_main, s))
        return err_set(CLLM_ERR_INTERNAL, "cannot start the connection watchdog thread");
    s->watch_running = true;
    atomic_store(&s->ready, 1);
    return CLLM_OK;
}

void srv_free(srv_server *s) {
    if (!s) return;
    atomic_store(&s->ready, 0);
    if (s->d) MHD_quiesce_daemon(s->d); /* no new connections */
    if (s->watch_running) {
        atomic_store(&s->watch_stop, 1);
        pthread_join(s->watch_thread, NULL);
    }
    if (s->engine_running) {
        cllm_engine_stop(s->e);
        pthread_join(s->engine_thread, NULL);
    }
    srv_jobs_abort_all(s);
    /* Let the woken connections send their last bytes (503 / an error chunk) before closing. */
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&s->jobs_mu);
        bool idle = s->jobs == NULL;
        pthread_mutex_unlock(&s->jobs_mu);
        if (idle) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (s->d) MHD_stop_daemon(s->d);
    srv_jobs_abort_all(s); /* requests that arrived while stopping */
    srv_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->jobs_mu);
    free(s->host);
    free(s->api_key);
    free(s->model_name);
    free(s);
}
