/* srv_request.h - OpenAI request bodies (chat completions, completions) parsed and validated into
 * a plain struct, or an OpenAI-style error. A pure function of the body bytes (no model, no
 * engine), so it can be fuzzed on its own. */
#ifndef CLLM_SERVER_SRV_REQUEST_H
#define CLLM_SERVER_SRV_REQUEST_H

#include "cllm.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_N 16    /* choices per request */
#define SRV_MAX_STOP 16 /* stop strings per request */

typedef enum srv_kind { SRV_CHAT = 0, SRV_COMPLETION } srv_kind;

/* An error for the client: HTTP status and the fields of {"error": {...}}. */
typedef struct srv_error {
    int status;
    const char *type; /* "invalid_request_error", ... (static strings) */
    char message[512];
    char param[64]; /* "" -> null */
    char code[48];  /* "" -> null */
} srv_error;

typedef struct srv_request {
    srv_kind kind;
    char *model; /* NULL when not given */
    json_t
        *messages; /* chat: array of {role, content (string or null), ...}, content parts joined */
    json_t *tools; /* chat: array or NULL */
    char *prompt;  /* completion: text prompt (NUL-terminated, prompt_len bytes) or NULL */
    size_t prompt_len;
    int32_t *prompt_ids; /* completion: token-id prompt or NULL */
    size_t n_prompt_ids;
    int max_tokens; /* -1: not given */
    int n;
    bool stream, include_usage, echo;
    int logprobs;     /* chat: 0/1; completions: 0/1 (logprobs given as an integer) */
    int top_logprobs; /* 0..CLLM_MAX_TOP_LOGPROBS */
    cllm_sampling_params sampling;
    bool has_seed;
    char **stop; /* n_stop NUL-terminated strings */
    int n_stop;
    bool ignore_eos;
    int min_tokens;
} srv_request;

/* Parse body (len bytes, need not be NUL-terminated). Returns true and fills *out (release with
 * srv_request_free), or false with *err set (status 400) and *out empty. */
bool srv_request_parse(srv_kind kind, const char *body, size_t len, srv_request *out,
                       srv_error *err);
void srv_request_free(srv_request *r);

/* Fill *err (printf-style message); returns false so callers can `return srv_fail(...)`. */
bool srv_fail(srv_error *err, int status, const char *type, const char *param, const char *code,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
