/* srv_job.c - the engine bridge: prompt construction (chat template with user text protected from
 * special-token parsing, or a completion prompt), submission of the n choices, the engine
 * thread's event callback, cancellation, and the job's shared lifetime. */
#include "server/srv_internal.h"

#include "base/clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define INVALID "invalid_request_error"

static void job_free(srv_job *j) {
    srv_server *s = j->srv;
    pthread_mutex_lock(&s->jobs_mu);
    if (j->prev)
        j->prev->next = j->next;
    else if (s->jobs == j)
        s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    pthread_mutex_unlock(&s->jobs_mu);
    for (int i = 0; j->ch && i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        free(c->text);
        free(c->lp_tok);
        free(c->lp);
        free(c->n_top);
        free(c->top_ids);
        free(c->top_lp);
    }
    free(j->ch);
    free(j->ids);
    free(j->echo);
    srv_request_free(&j->req);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Drop one reference (job->mu held); frees the job when it was the last. */
static void unref_locked(srv_job *j) {
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) job_free(j);
}

/* Does this text contain special-token text (that tokenizing with parse_special would match)? */
static bool has_special_text(const cllm_tokenizer *t, const char *s, size_t n) {
    int32_t *ids;
    size_t k;
    if (cllm_tokenizer_encode(t, s, n, 0, 1, &ids, &k)) return false; /* invalid: caught later */
    bool found = false;
    for (size_t i = 0; i < k && !found; i++)
        found = cllm_tokenizer_is_special(t, ids[i]);
    free(ids);
    return found;
}

/* The conversation as JSON text, for cllm_chat_render. */
static char *conversation_json(const srv_request *r) {
    json_t *conv = json_pack("{sO}", "messages", r->messages);
    if (conv && r->tools) json_object_set(conv, "tools", r->tools);
    char *text = conv ? json_dumps(conv, JSON_COMPACT) : NULL;
    json_decref(conv);
    return text;
}

static bool chat_prompt_ids(srv_server *s, srv_job *j, srv_error *err) {
    if (!s->tmpl)
        return srv_fail(err, 400, INVALID, "messages", "no_chat_template",
                        "model '%s' has no chat template; use /v1/completions", s->model_name);
    char *conv = conversation_json(&j->req);
    if (!conv) return srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    char *text = NULL;
    size_t len = 0, n_spans = 0;
    cllm_span *spans = NULL;
    int exact = 0;
    bool ok = true;
    cllm_status st =
        cllm_chat_render(s->tmpl, conv, (size_t)-1, 1, &text, &len, &spans, &n_spans, &exact);
    free(conv);
    if (st)
        return srv_fail(err, 400, INVALID, "messages", "template_error",
                        "the chat template failed: %s", cllm_last_error());
    if (exact) {
        st = cllm_tokenizer_encode_protected(s->tok, text, len, 0, spans, n_spans, &j->ids,
                                             &j->n_prompt);
    } else {
        /* The template transformed some content, so its bytes cannot be told from the
         * template's own: accept it only if no content has special-token text in it. */
        size_t i;
        json_t *m;
        json_array_foreach(j->req.messages, i, m) {
            json_t *c = json_object_get(m, "content");
            if (ok && json_is_string(c) &&
                has_special_text(s->tok, json_string_value(c), json_string_length(c)))
                ok = srv_fail(err, 400, INVALID, "messages", "special_token_in_content",
                              "messages[%zu].content contains special-token text, which this "
                              "model's template does not let us keep apart from its own",
                              i);
        }
        st = ok ? cllm_tokenizer_encode(s->tok, text, len, 0, 1, &j->ids, &j->n_prompt) : CLLM_OK;
    }
    if (ok && st)
        ok = srv_fail(err, 400, INVALID, "messages", NULL, "cannot tokenize the prompt: %s",
                      cllm_last_error());
    free(spans);
    free(text);
    return ok;
}

static bool completion_prompt_ids(srv_server *s, srv_job *j, srv_error *err) {
    srv_request *r = &j->req;
    if (r->prompt_ids) {
        for (size_t i = 0; i < r->n_prompt_ids; i++)
            if (r->prompt_ids[i] >= cllm_tokenizer_vocab_size(s->tok))
                return srv_fail(err, 400, INVALID, "prompt", "invalid_value",
                                "prompt[%zu] = %d is not a token id (vocabulary %d)", i,
                                r->prompt_ids[i], cllm_tokenizer_vocab_size(s->tok));
        j->ids = r->prompt_ids;
        j->n_prompt = r->n_prompt_ids;
        r->prompt_ids = NULL;
        if (r->echo &&
            cllm_tokenizer_decode(s->tok, j->ids, j->n_prompt, false, &j->echo, &j->echo_len))
            return srv_fail(err, 500, "server_error", NULL, NULL, "%s", cllm_last_error());
        return true;
    }
    /* As `cllm run` does: the post-processor's BOS, special-token text parsed. */
    if (cllm_tokenizer_encode(s->tok, r->prompt, r->prompt_len, true, true, &j->ids, &j->n_prompt))
        return srv_fail(err, 400, INVALID, "prompt", NULL, "cannot tokenize the prompt: %s",
                        cllm_last_error());
    if (r->echo) {
        j->echo = r->prompt;
        j->echo_len = r->prompt_len;
        r->prompt = NULL;
    }
    return true;
}

srv_job *srv_job_create(srv_server *s, srv_request *req, srv_error *err) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_request_free(req);
        srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    j->srv = s;
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->refs = 1;
    j->fd = -1;
    j->t_arrival = j->t_progress = clock_now();
    j->created = (long long)time(NULL);
    unsigned long long k = atomic_fetch_add(&s->next_id, 1);
    snprintf(j->id, sizeof j->id, "%s-%016llx%08llx", j->req.kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)j->created * 0x9E3779B97F4A7C15ull ^ k, k);
    bool ok =
        j->req.kind == SRV_CHAT ? chat_prompt_ids(s, j, err) : completion_prompt_ids(s, j, err);
    if (ok && j->n_prompt == 0)
        ok = srv_fail(err, 400, INVALID, j->req.kind == SRV_CHAT ? "messages" : "prompt", NULL,
                      "the prompt is empty (no tokens)");
    int limit = s->max_ctx < s->kv_tokens ? s->max_ctx : s->kv_tokens;
    if (ok && j->req.max_tokens < 0) {
        /* OpenAI's defaults: 16 for completions, the rest of the context for chat */
        int room = limit - (int)j->n_prompt;
        j->req.max_tokens = j->req.kind == SRV_CHAT ? room : (room < 16 ? room : 16);
        if (room < 1)
            ok = srv_fail(err, 400, INVALID, "messages", "context_length_exceeded",
                          "the prompt has %zu tokens; the context holds %d", j->n_prompt, limit);
    }
    j->n = j->req.n;
    j->ch = ok ? calloc((size_t)j->n, sizeof *j->ch) : NULL;
    if (ok && !j->ch) ok = srv_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    for (int i = 0; ok && i < j->n; i++) {
        j->ch[i].job = j;
        j->ch[i].index = i;
    }
    if (!ok) {
        job_free(j);
        return NULL;
    }
    pthread_mutex_lock(&s->jobs_mu);
    j->next = s->jobs;
    if (s->jobs) s->jobs->prev = j;
    s->jobs = j;
    pthread_mutex_unlock(&s->jobs_mu);
    return j;
}

/* Hand choice i to the engine (job->mu held); takes a reference for it. */
static cllm_status submit_choice(srv_job *j, int i) {
    const srv_request *q = &j->req;
    cllm_request r = cllm_request_default();
    r.prompt = j->ids;
    r.n_prompt = j->n_prompt;
    r.sampling = q->sampling;
    r.sampling.seed = j->seed + (uint64_t)i; /* the choices differ, reproducibly */
    r.max_tokens = q->max_tokens;
    r.stop = (const char *const *)q->stop;
    r.n_stop = q->n_stop;
    r.ignore_eos = q->ignore_eos;
    r.min_tokens = q->min_tokens;
    r.logprobs = q->logprobs;
    r.top_logprobs = q->top_logprobs;
    r.user_data = &j->ch[i];
    cllm_status code = cllm_engine_submit(j->srv->e, &r, &j->ch[i].id);
    if (code == CLLM_OK) j->refs++;
    return code;
}

bool srv_job_submit(srv_job *j, srv_error *err) {
    srv_server *s = j->srv;
    const srv_request *q = &j->req;
    cllm_engine_stats st;
    cllm_engine_get_stats(s->e, &st);
    if (st.n_waiting + j->n > s->cfg.max_queue)
        return srv_fail(err, 429, "rate_limit_error", NULL, "queue_full",
                        "the server is busy: %d requests are waiting (--max-queue %d)",
                        st.n_waiting, s->cfg.max_queue);
    j->seed = q->has_seed ? q->sampling.seed
                          : (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^
                                (uint64_t)atomic_fetch_add(&s->next_id, 1) << 17;
    pthread_mutex_lock(&j->mu);
    /* Only a share of --max-seqs now: one request with a large n cannot fill every running
     * slot; its other choices are submitted as these finish (srv_job_on_event). */
    int first = j->n < s->share ? j->n : s->share, i = 0;
    cllm_status code = CLLM_OK;
    for (; i < first && code == CLLM_OK; i++)
        code = submit_choice(j, i);
    if (code) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", cllm_last_error());
        for (int k = 0; k < i - 1; k++) /* they end with a cancelled event, dropping their refs */
            cllm_engine_cancel(s->e, j->ch[k].id);
        j->n_unfinished = i - 1;
        j->http_done = true; /* no more submissions */
        pthread_mutex_unlock(&j->mu);
        if (code == CLLM_ERR_LIMIT)
            return srv_fail(err, 400, INVALID, "max_tokens", "context_length_exceeded",
                            "%s (prompt %zu tokens)", msg, j->n_prompt);
        if (code == CLLM_ERR_INVALID_ARG) return srv_fail(err, 400, INVALID, NULL, NULL, "%s", msg);
        return srv_fail(err, 500, "server_error", NULL, NULL, "%s", msg);
    }
    j->n_submitted = first;
    j->n_unfinished = j->n;
    pthread_mutex_unlock(&j->mu);
    srv_metrics_prompt(&s->metrics, (int)j->n_prompt);
    return true;
}

/* Cancel what the job still runs because its client is gone or not reading (job->mu held): no
 * more output is kept or submitted; a stalled connection is shut down so libmicrohttpd closes it
 * (the socket is still open: the HTTP side has not released the job). */
static void abandon(srv_job *j, bool shut) {
    j->gone = true;
    for (int i = 0; i < j->n; i++) {
        srv_choice *c = &j->ch[i];
        if (c->finish != CLLM_REASON_NONE) continue;
        if (c->id) {
            cllm_engine_cancel(j->srv->e, c->id); /* its cancelled event follows */
        } else { /* never submitted: ends here (a submitted one is still running) */
            c->finish = CLLM_REASON_CANCELLED;
            snprintf(c->error, sizeof c->error, "the client went away");
            j->n_unfinished--;
        }
    }
    srv_metrics_cancelled(&j->srv->metrics);
    if (shut && j->fd >= 0 && !j->http_done) shutdown(j->fd, SHUT_RDWR);
}

/* Bytes in the socket's send queue the client has not acknowledged (job->mu held, so the socket
 * is still the connection's); 0 when unknown. */
static size_t outq(const srv_job *j) {
    int q = 0;
    if (j->fd < 0 || j->http_done || ioctl(j->fd, SIOCOUTQ, &q) != 0 || q < 0) return 0;
    return (size_t)q;
}

/* Bytes of streamed output the client has not taken yet (job->mu held): what the choices hold
 * beyond what was formatted (logprob entries counted at a rough JSON size) plus the kernel's
 * send queue, which on loopback alone can take megabytes. */
static size_t unsent(const srv_job *j) {
    size_t n = outq(j), per_lp = 48 + 48 * (size_t)j->req.top_logprobs;
    for (int i = 0; i < j->n; i++)
        n += j->ch[i].len - j->ch[i].sent + (j->ch[i].n_lp - j->ch[i].lp_sent) * per_lp;
    return n;
}

void srv_job_release(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->http_done = true;
    bool cancelled = false;
    for (int i = 0; i < j->n; i++)
        if (j->ch[i].id && j->ch[i].finish == CLLM_REASON_NONE) {
            cllm_engine_cancel(j->srv->e, j->ch[i].id);
            cancelled = true;
        }
    if (cancelled && !j->gone) srv_metrics_cancelled(&j->srv->metrics);
    unref_locked(j);
}

static bool grow(void **p, size_t elem, size_t n) {
    void *q = realloc(*p, elem * n);
    if (!q) return false;
    *p = q;
    return true;
}

/* Append the event's text and log-probabilities to its choice (job->mu held). */
static void record(srv_choice *c, const cllm_event *ev, int k) {
    if (ev->len) {
        if (c->len + ev->len + 1 > c->cap) {
            size_t cap = (c->len + ev->len + 1) * 2;
            if (!grow((void **)&c->text, 1, cap)) return;
            c->cap = cap;
        }
        memcpy(c->text + c->len, ev->text, ev->len);
        c->len += ev->len;
        c->text[c->len] = 0;
    }
    if (!c->job->req.logprobs || ev->token < 0) return;
    if (c->n_lp == c->cap_lp) {
        size_t cap = c->cap_lp ? 2 * c->cap_lp : 32, kk = k ? (size_t)k : 1;
        if (!grow((void **)&c->lp_tok, sizeof(int32_t), cap) ||
            !grow((void **)&c->lp, sizeof(float), cap) ||
            !grow((void **)&c->n_top, sizeof(int), cap) ||
            !grow((void **)&c->top_ids, sizeof(int32_t), cap * kk) ||
            !grow((void **)&c->top_lp, sizeof(float), cap * kk))
            return;
        c->cap_lp = cap;
    }
    size_t e = c->n_lp++;
    c->lp_tok[e] = ev->token;
    c->lp[e] = ev->logprob;
    c->n_top[e] = ev->n_top < k ? ev->n_top : k;
    for (int t = 0; t < c->n_top[e]; t++) {
        c->top_ids[e * (size_t)k + (size_t)t] = ev->top_ids[t];
        c->top_lp[e * (size_t)k + (size_t)t] = ev->top_logprobs[t];
    }
}

void srv_job_on_event(void *user, const cllm_event *ev) {
    srv_server *s = user;
    srv_choice *c = ev->user_data;
    if (!c) return;
    srv_job *j = c->job;
    double now = clock_now();
    pthread_mutex_lock(&j->mu);
    if (c->finish != CLLM_REASON_NONE) { /* already ended by srv_jobs_abort_all */
        pthread_mutex_unlock(&j->mu);
        return;
    }
    if (ev->token >= 0) {
        if (c->n_gen == 0) c->t_first = now;
        c->t_last = now;
        c->n_gen = ev->n_generated;
    }
    j->n_cached = ev->n_cached;
    if (!j->gone) record(c, ev, j->req.top_logprobs);
    if (j->req.stream && !j->gone && !j->http_done && unsent(j) > (size_t)s->cfg.max_buffered)
        abandon(j, true);
    bool wake = j->req.stream;
    if (ev->finished) {
        c->finish = ev->finished;
        if (ev->finished == CLLM_REASON_ERROR)
            snprintf(c->error, sizeof c->error, "%s", ev->error ? ev->error : "engine error");
        srv_metrics_choice(&s->metrics, c->n_gen, c->n_gen ? c->t_first - j->t_arrival : -1,
                           c->n_gen > 1 ? (c->t_last - c->t_first) / (c->n_gen - 1) : -1);
        wake = --j->n_unfinished == 0 || j->req.stream;
        /* its slot goes to the job's next waiting choice */
        while (!j->http_done && !j->gone && j->n_submitted < j->n) {
            int k = j->n_submitted++;
            if (submit_choice(j, k) == CLLM_OK) break;
            j->ch[k].finish = CLLM_REASON_ERROR;
            snprintf(j->ch[k].error, sizeof j->ch[k].error, "%s", cllm_last_error());
            wake = --j->n_unfinished == 0 || j->req.stream;
        }
    }
    /* Resume outside the lock (MHD takes its own locks); a suspended connection cannot end,
     * so the HTTP side keeps its reference until then. */
    wake = wake && j->suspended;
    if (wake) j->suspended = false;
    bool last = ev->finished && --j->refs == 0;
    void (*fn)(void *) = j->wake;
    void *ctx = j->wake_ctx;
    pthread_mutex_unlock(&j->mu);
    if (wake) fn(ctx);
    if (last) job_free(j);
}

void srv_jobs_abort_all(srv_server *s) {
    for (;;) {
        /* One job at a time: its last reference may go (and unlink it) while we hold it. */
        pthread_mutex_lock(&s->jobs_mu);
        srv_job *j = s->jobs;
        while (j && j->n_unfinished == 0)
            j = j->next;
        if (j) pthread_mutex_lock(&j->mu);
        pthread_mutex_unlock(&s->jobs_mu);
        if (!j) return;
        int drop = 0;
        for (int i = 0; i < j->n; i++)
            if (j->ch[i].finish == CLLM_REASON_NONE) { /* submitted or still waiting */
                j->ch[i].finish = CLLM_REASON_CANCELLED;
                snprintf(j->ch[i].error, sizeof j->ch[i].error, "the server is shutting down");
                drop += j->ch[i].id != 0;
            }
        j->n_unfinished = 0;
        bool wake = j->suspended;
        j->suspended = false;
        j->refs -= drop;
        bool last = j->refs == 0;
        void (*fn)(void *) = j->wake;
        void *ctx = j->wake_ctx;
        pthread_mutex_unlock(&j->mu);
        if (wake) fn(ctx);
        if (last) job_free(j);
    }
}

void srv_jobs_watch(srv_server *s) {
    double now = clock_now();
    pthread_mutex_lock(&s->jobs_mu); /* jobs cannot be freed (unlinked) while we hold it */
    for (srv_job *j = s->jobs; j; j = j->next) {
        pthread_mutex_lock(&j->mu);
        if (!j->http_done && !j->gone && j->fd >= 0 && j->n_unfinished > 0) {
            char b;
            ssize_t r = recv(j->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            bool closed =
                r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
            bool stalled = false;
            if (j->req.stream) {
                /* progress: the client's TCP acknowledged more bytes (it stops once its receive
                 * buffer is full), or it has taken everything */
                struct tcp_info ti;
                socklen_t tl = sizeof ti;
                uint64_t acked = 0;
                memset(&ti, 0, sizeof ti);
                if (getsockopt(j->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
                    acked = ti.tcpi_bytes_acked;
                size_t u = unsent(j);
                if (acked != j->last_acked || u == 0) j->t_progress = now;
                j->last_acked = acked;
                stalled = u > (size_t)s->cfg.max_buffered ||
                          (u > 0 && now - j->t_progress > s->cfg.write_timeout);
            }
            if (closed || stalled) abandon(j, stalled);
        }
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->jobs_mu);
}
