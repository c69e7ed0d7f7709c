/* srv_request.c - validation of OpenAI chat/completions request bodies: every field's type and
 * range, unknown fields rejected, OpenAI's defaults (temperature 1, top_p 1, no top-k/min-p). */
#include "server/srv_request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

bool srv_fail(srv_error *err, int status, const char *type, const char *param, const char *code,
              const char *fmt, ...) {
    err->status = status;
    err->type = type;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    snprintf(err->code, sizeof err->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->model);
    json_decref(r->messages);
    json_decref(r->tools);
    free(r->prompt);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    memset(r, 0, sizeof *r);
}

static bool bad_type(srv_error *e, const char *key, const char *what) {
    return srv_fail(e, 400, INVALID, key, "invalid_type", "'%s' must be %s", key, what);
}

static bool num(srv_error *e, const char *key, json_t *v, double lo, double hi, double *out) {
    if (!json_is_number(v)) return bad_type(e, key, "a number");
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return srv_fail(e, 400, INVALID, key, "invalid_value", "'%s' is %g, must be in [%g, %g]",
                        key, d, lo, hi);
    *out = d;
    return true;
}

static bool integer(srv_error *e, const char *key, json_t *v, json_int_t lo, json_int_t hi,
                    json_int_t *out) {
    if (!json_is_integer(v)) return bad_type(e, key, "an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return srv_fail(e, 400, INVALID, key, "invalid_value",
                        "'%s' is %lld, must be in [%lld, %lld]", key, (long long)x, (long long)lo,
                        (long long)hi);
    *out = x;
    return true;
}

static bool boolean(srv_error *e, const char *key, json_t *v, bool *out) {
    if (!json_is_boolean(v)) return bad_type(e, key, "a boolean");
    *out = json_is_true(v);
    return true;
}

static bool stop_list(srv_error *e, json_t *v, srv_request *r) {
    json_t *one = json_is_string(v) ? v : NULL;
    size_t n = one ? 1 : json_array_size(v);
    if (!one && !json_is_array(v)) return bad_type(e, "stop", "a string or an array of strings");
    if (n > SRV_MAX_STOP)
        return srv_fail(e, 400, INVALID, "stop", "invalid_value", "at most %d stop strings",
                        SRV_MAX_STOP);
    r->stop = calloc(n ? n : 1, sizeof(char *));
    if (!r->stop) return srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = one ? one : json_array_get(v, i);
        if (!json_is_string(s)) return bad_type(e, "stop", "a string or an array of strings");
        if (json_string_length(s) == 0 || strlen(json_string_value(s)) != json_string_length(s))
            return srv_fail(e, 400, INVALID, "stop", "invalid_value",
                            "stop strings must be non-empty");
        if (!(r->stop[r->n_stop++] = strdup(json_string_value(s))))
            return srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    return true;
}

/* Content: string, null, or an array of {"type": "text", "text": "..."} parts (joined). */
static bool message_content(srv_error *e, size_t i, json_t *c, json_t **out) {
    if (json_is_string(c) || json_is_null(c)) {
        *out = json_incref(c);
        return true;
    }
    if (!json_is_array(c))
        return srv_fail(e, 400, INVALID, "messages", "invalid_type",
                        "messages[%zu].content must be a string or an array of text parts", i);
    size_t total = 0, k;
    json_t *part;
    json_array_foreach(c, k, part) {
        json_t *t = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(json_object_get(part, "type")) ||
            strcmp(json_string_value(json_object_get(part, "type")), "text") || !json_is_string(t))
            return srv_fail(e, 400, INVALID, "messages", "invalid_value",
                            "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": ...} "
                            "parts are supported",
                            i, k);
        total += json_string_length(t) + 1;
    }
    char *buf = malloc(total + 1);
    if (!buf) return srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    size_t n = 0;
    json_array_foreach(c, k, part) {
        json_t *t = json_object_get(part, "text");
        if (k) buf[n++] = '\n';
        memcpy(buf + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }
    *out = json_stringn_nocheck(buf, n);
    free(buf);
    return *out != NULL || srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
}

static bool in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return true;
    return false;
}

/* A normalized copy of the messages: role checked, content a string or null, known keys only. */
static bool messages(srv_error *e, json_t *v, srv_request *r) {
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    static const char *const keys[] = {"name", "tool_calls", "tool_call_id", "reasoning_content"};
    if (!json_is_array(v) || json_array_size(v) == 0)
        return srv_fail(e, 400, INVALID, "messages", "invalid_type",
                        "'messages' must be a non-empty array");
    r->messages = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m) {
        json_t *role = json_object_get(m, "role");
        bool ok = json_is_object(m) && json_is_string(role) &&
                  in_list(json_string_value(role), roles, sizeof roles / sizeof roles[0]);
        if (!ok)
            return srv_fail(e, 400, INVALID, "messages", "invalid_value",
                            "messages[%zu] needs a \"role\" of system, developer, user, "
                            "assistant or tool",
                            i);
        const char *key;
        json_t *val;
        json_object_foreach(m, key, val) {
            bool known = !strcmp(key, "role") || !strcmp(key, "content") ||
                         in_list(key, keys, sizeof keys / sizeof keys[0]);
            if (!known)
                return srv_fail(e, 400, INVALID, "messages", "unknown_parameter",
                                "messages[%zu]: unknown field '%s'", i, key);
        }
        json_t *content = NULL, *copy = json_copy(m);
        if (!copy || !message_content(e, i, json_object_get(m, "content"), &content)) {
            json_decref(copy);
            return copy ? false : srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        }
        json_object_set_new(copy, "content", content ? content : json_null());
        json_array_append_new(r->messages, copy);
    }
    return true;
}

/* "prompt": a string, token ids, or a one-element array of either. */
static bool prompt(srv_error *e, json_t *v, srv_request *r) {
    if (json_is_array(v) && json_array_size(v) == 1 &&
        (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0))))
        v = json_array_get(v, 0);
    if (json_is_string(v)) {
        r->prompt_len = json_string_length(v);
        r->prompt = malloc(r->prompt_len + 1);
        if (!r->prompt) return srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        memcpy(r->prompt, json_string_value(v), r->prompt_len + 1);
        return true;
    }
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0)
        return srv_fail(e, 400, INVALID, "prompt", "invalid_type",
                        "'prompt' must be a string or a non-empty array of token ids (one "
                        "prompt per request)");
    r->prompt_ids = malloc(sizeof(int32_t) * n);
    if (!r->prompt_ids) return srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return srv_fail(e, 400, INVALID, "prompt", "invalid_value",
                            "prompt[%zu] is not a token id (one prompt per request)", i);
        r->prompt_ids[i] = (int32_t)json_integer_value(x);
    }
    r->n_prompt_ids = n;
    return true;
}

static bool stream_options(srv_error *e, json_t *v, srv_request *r) {
    if (!json_is_object(v)) return bad_type(e, "stream_options", "an object");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "include_usage") && strcmp(key, "continuous_usage_stats"))
            return srv_fail(e, 400, INVALID, "stream_options", "unknown_parameter",
                            "stream_options: unknown field '%s'", key);
        if (!strcmp(key, "include_usage") &&
            !boolean(e, "stream_options.include_usage", val, &r->include_usage))
            return false;
    }
    return true;
}

/* One top-level field; false with *e set when it is bad or unknown. */
static bool field(srv_error *e, const char *k, json_t *v, srv_request *r, json_t **logprobs) {
    bool chat = r->kind == SRV_CHAT;
    cllm_sampling_params *sp = &r->sampling;
    json_int_t x;
    double d;
    if (json_is_null(v) && strcmp(k, "messages") && strcmp(k, "prompt")) return true; /* default */
    if (!strcmp(k, "model")) {
        if (!json_is_string(v)) return bad_type(e, k, "a string");
        return (r->model = strdup(json_string_value(v))) != NULL ||
               srv_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    if (chat && !strcmp(k, "messages")) return messages(e, v, r);
    if (!chat && !strcmp(k, "prompt")) return prompt(e, v, r);
    if (!strcmp(k, "max_tokens") || (chat && !strcmp(k, "max_completion_tokens"))) {
        if (!integer(e, k, v, 1, 1 << 30, &x)) return false;
        r->max_tokens = (int)x;
        return true;
    }
    if (!strcmp(k, "n")) {
        if (!integer(e, k, v, 1, SRV_MAX_N, &x)) return false;
        r->n = (int)x;
        return true;
    }
    if (!chat && !strcmp(k, "best_of")) return integer(e, k, v, 1, 1, &x); /* no reranking */
    if (!strcmp(k, "temperature")) return num(e, k, v, 0, 2, &d) && (sp->temperature = (float)d, 1);
    if (!strcmp(k, "top_p")) return num(e, k, v, 1e-9, 1, &d) && (sp->top_p = (float)d, 1);
    if (!strcmp(k, "min_p")) return num(e, k, v, 0, 1, &d) && (sp->min_p = (float)d, 1);
    if (!strcmp(k, "top_k")) return integer(e, k, v, -1, 1 << 30, &x) && (sp->top_k = (int)x, 1);
    if (!strcmp(k, "presence_penalty"))
        return num(e, k, v, -2, 2, &d) && (sp->presence_penalty = (float)d, 1);
    if (!strcmp(k, "frequency_penalty"))
        return num(e, k, v, -2, 2, &d) && (sp->frequency_penalty = (float)d, 1);
    if (!strcmp(k, "repetition_penalty"))
        return num(e, k, v, 1e-3, 100, &d) && (sp->repeat_penalty = (float)d, 1);
    if (!strcmp(k, "seed")) {
        if (!json_is_integer(v)) return bad_type(e, k, "an integer");
        sp->seed = (uint64_t)json_integer_value(v);
        r->has_seed = true;
        return true;
    }
    if (!strcmp(k, "stop")) return stop_list(e, v, r);
    if (!strcmp(k, "stream")) return boolean(e, k, v, &r->stream);
    if (!strcmp(k, "stream_options")) return stream_options(e, v, r);
    if (!strcmp(k, "logprobs") || (chat && !strcmp(k, "top_logprobs"))) {
        logprobs[!strcmp(k, "top_logprobs")] = v; /* checked after all fields: they interact */
        return true;
    }
    if (!chat && !strcmp(k, "echo")) return boolean(e, k, v, &r->echo);
    if (!strcmp(k, "ignore_eos")) return boolean(e, k, v, &r->ignore_eos);
    if (!strcmp(k, "min_tokens"))
        return integer(e, k, v, 0, 1 << 30, &x) && (r->min_tokens = (int)x, 1);
    if (chat && !strcmp(k, "tools")) {
        if (!json_is_array(v)) return bad_type(e, k, "an array");
        r->tools = json_incref(v);
        return true;
    }
    /* Accepted for compatibility, no effect on generation here. */
    if (!strcmp(k, "user") || !strcmp(k, "store") || !strcmp(k, "metadata") ||
        !strcmp(k, "service_tier") || (chat && !strcmp(k, "parallel_tool_calls")))
        return true;
    if (chat && !strcmp(k, "tool_choice")) {
        if (json_is_string(v) &&
            (!strcmp(json_string_value(v), "none") || !strcmp(json_string_value(v), "auto")))
            return true;
        return srv_fail(e, 400, INVALID, k, "unsupported_value",
                        "'tool_choice' may only be \"none\" or \"auto\"");
    }
    if (!strcmp(k, "logit_bias")) {
        if (json_is_object(v) && json_object_size(v) == 0) return true;
        return srv_fail(e, 400, INVALID, k, "unsupported_value", "'logit_bias' is not supported");
    }
    if (chat && !strcmp(k, "response_format")) {
        json_t *t = json_object_get(v, "type");
        if (json_is_string(t) && !strcmp(json_string_value(t), "text")) return true;
        return srv_fail(e, 400, INVALID, k, "unsupported_value",
                        "only {\"type\": \"text\"} is supported for 'response_format'");
    }
    return srv_fail(e, 400, INVALID, k, "unknown_parameter", "Unrecognized request argument: '%s'",
                    k);
}

static bool logprob_fields(srv_error *e, srv_request *r, json_t *lp, json_t *top) {
    json_int_t x;
    if (r->kind == SRV_COMPLETION) { /* "logprobs": N -> the chosen token and N alternatives */
        if (!lp) return true;
        if (!integer(e, "logprobs", lp, 0, CLLM_MAX_TOP_LOGPROBS, &x)) return false;
        r->logprobs = 1;
        r->top_logprobs = (int)x;
        return true;
    }
    bool on = false;
    if (lp && !boolean(e, "logprobs", lp, &on)) return false;
    r->logprobs = on;
    if (!top) return true;
    if (!integer(e, "top_logprobs", top, 0, CLLM_MAX_TOP_LOGPROBS, &x)) return false;
    if (!on)
        return srv_fail(e, 400, INVALID, "top_logprobs", "invalid_value",
                        "'top_logprobs' needs 'logprobs' set to true");
    r->top_logprobs = (int)x;
    return true;
}

bool srv_request_parse(srv_kind kind, const char *body, size_t len, srv_request *out,
                       srv_error *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->max_tokens = -1;
    out->n = 1;
    cllm_sampling_params *sp = &out->sampling;
    *sp = cllm_sampling_default_params();
    sp->temperature = 1; /* OpenAI's defaults */
    sp->top_k = 0;
    sp->top_p = 1;
    sp->min_p = 0;
    sp->repeat_penalty = 1;
    sp->repeat_last_n = -1;
    sp->presence_penalty = 0;
    sp->frequency_penalty = 0;
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    bool ok = false;
    if (!root) {
        srv_fail(err, 400, INVALID, NULL, "invalid_json", "request body is not valid JSON: %s",
                 je.text);
        goto out;
    }
    if (!json_is_object(root)) {
        srv_fail(err, 400, INVALID, NULL, "invalid_json", "request body must be a JSON object");
        goto out;
    }
    json_t *lp[2] = {NULL, NULL};
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (!field(err, k, v, out, lp)) goto out;
    }
    if (!logprob_fields(err, out, lp[0], lp[1])) goto out;
    if (kind == SRV_CHAT && !out->messages) {
        srv_fail(err, 400, INVALID, "messages", "missing_required_parameter",
                 "'messages' is required");
        goto out;
    }
    if (kind == SRV_COMPLETION && !out->prompt && !out->prompt_ids) {
        srv_fail(err, 400, INVALID, "prompt", "missing_required_parameter", "'prompt' is required");
        goto out;
    }
    if (out->include_usage && !out->stream) {
        srv_fail(err, 400, INVALID, "stream_options", "invalid_value",
                 "'stream_options' is only allowed when 'stream' is true");
        goto out;
    }
    if (isnan(sp->temperature)) sp->temperature = 1;
    ok = true;
out:
    json_decref(root);
    if (!ok) srv_request_free(out);
    return ok;
}
