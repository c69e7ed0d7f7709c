/* srv_job.h - the engine bridge: one HTTP completion request (a "job") as n engine requests (its
 * choices), the prompt built from it (chat template + tokenizer, user text never special), and
 * the engine thread's event callback filling each choice's text and log-probabilities.
 *
 * A job is shared by the HTTP side (its connection) and the engine (each unfinished choice):
 * refs counts both; whoever drops the last reference frees it. job->mu guards everything the
 * engine callback writes. While the HTTP side waits it suspends its connection and sets
 * `suspended`; the engine side wakes it through `wake` (MHD_resume_connection).
 *
 * Bounded work per client: at most srv->share choices of a job are in the engine at once (the
 * others are submitted as those finish), a job is cancelled when its client goes away (the
 * watchdog peeks at the socket, streamed or not), and a stream whose client does not read is
 * cancelled and its connection shut down once max_buffered bytes wait or after write_timeout
 * seconds without progress. */
#ifndef CLLM_SERVER_SRV_JOB_H
#define CLLM_SERVER_SRV_JOB_H

#include "server/srv_request.h"

#include <pthread.h>

typedef struct srv_server srv_server;
typedef struct srv_job srv_job;

typedef struct srv_choice {
    srv_job *job;
    int index;
    cllm_request_id id;    /* 0: not submitted */
    char *text;            /* everything generated so far */
    size_t len, cap, sent; /* sent: bytes already streamed */
    int n_gen;
    cllm_finish_reason finish; /* NONE while running */
    bool final_sent;
    /* log-probabilities, one entry per generated token (with job->req.logprobs) */
    int32_t *lp_tok;
    float *lp;
    int *n_top;
    int32_t *top_ids; /* [entry][top_logprobs] */
    float *top_lp;
    size_t n_lp, cap_lp, lp_sent;
    double t_first, t_last;
    char error[160];
} srv_choice;

struct srv_job {
    srv_server *srv;
    pthread_mutex_t mu;
    int refs;
    srv_request req;
    int32_t *ids; /* the prompt */
    size_t n_prompt;
    char *echo; /* completions with echo: the prompt text */
    size_t echo_len;
    int n;
    srv_choice *ch;
    int n_unfinished;
    int n_cached;
    char id[48];
    long long created;
    double t_arrival;
    uint64_t seed;   /* choice i samples with seed + i */
    int n_submitted; /* choices handed to the engine (the rest wait for a share) */
    /* HTTP side */
    bool suspended, http_done, head_sent, stream_done;
    bool gone;           /* cancelled because the client went away or stopped reading */
    int fd;              /* the connection's socket (valid while !http_done), -1 unknown */
    double t_progress;   /* streams: last time the client was caught up or took bytes */
    uint64_t last_acked; /* streams: bytes the client's TCP acknowledged, at the last look */
    void (*wake)(void *ctx);
    void *wake_ctx;
    srv_job *prev, *next; /* the server's list of live jobs */
};

/* Build the prompt and the choices from a parsed request (moved into the job; *req is emptied
 * either way). On failure *err is set and NULL is returned. */
srv_job *srv_job_create(srv_server *s, srv_request *req, srv_error *err);
/* Submit every choice to the engine (or none: then *err is set, false). */
bool srv_job_submit(srv_job *j, srv_error *err);
/* The HTTP side is done with the job (response sent or client gone): unfinished choices are
 * cancelled, the HTTP reference dropped. */
void srv_job_release(srv_job *j);
/* The engine thread's event callback (user: the srv_server). */
void srv_job_on_event(void *user, const cllm_event *ev);
/* The watchdog (every few ms, any thread): cancel the jobs whose client closed its connection
 * (FIN or RST, seen by peeking at the socket), and the streams whose client took no bytes for
 * write_timeout seconds while output waited (their connection is shut down). */
void srv_jobs_watch(srv_server *s);
/* Engine stopped: finish every unfinished choice of every live job (CLLM_REASON_CANCELLED) and
 * wake the connections waiting for them. */
void srv_jobs_abort_all(srv_server *s);

#endif
