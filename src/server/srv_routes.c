/* srv_routes.c - the small endpoints: GET /v1/models[/ID], GET /health, GET /metrics, and
 * llama.cpp-style POST /tokenize and /detokenize. */
#include "server/srv_http.h"

#include "server/srv_format.h"

#include <stdlib.h>
#include <string.h>

static json_t *model_object(const srv_server *s) {
    return json_pack("{s:s,s:s,s:I,s:s,s:i}", "id", s->model_name, "object", "model", "created",
                     (json_int_t)0, "owned_by", "cllm", "max_model_len", s->max_ctx);
}

enum MHD_Result srv_route_models(srv_conn *c, const char *id) {
    srv_server *s = c->s;
    if (id) {
        if (strcmp(id, s->model_name)) {
            srv_error e;
            srv_fail(&e, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist", id);
            return srv_reply_error(c, &e);
        }
        return srv_reply_json(c, 200, model_object(s));
    }
    json_t *data = json_array();
    json_array_append_new(data, model_object(s));
    return srv_reply_json(c, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

enum MHD_Result srv_route_health(srv_conn *c) {
    bool ready = atomic_load(&c->s->ready);
    return srv_reply_json(c, ready ? 200 : 503,
                          json_pack("{s:s}", "status", ready ? "ok" : "loading"));
}

enum MHD_Result srv_route_metrics(srv_conn *c) {
    size_t n = 0;
    srv_server *s = c->s;
    char *t = srv_metrics_render(&s->metrics, atomic_load(&s->ready) ? s->e : NULL, &n);
    if (t && atomic_load(&s->ready)) { /* the limits in force, as /v1/models reports them */
        char extra[512];
        int k =
            snprintf(extra, sizeof extra,
                     "# HELP cllm_max_model_len Tokens per request (prompt + output) enforced.\n"
                     "# TYPE cllm_max_model_len gauge\ncllm_max_model_len %d\n"
                     "# HELP cllm_max_seqs_per_request Choices of one request running at once.\n"
                     "# TYPE cllm_max_seqs_per_request gauge\ncllm_max_seqs_per_request %d\n",
                     s->max_ctx, s->share);
        char *u = k > 0 && (size_t)k < sizeof extra ? realloc(t, n + (size_t)k + 1) : NULL;
        if (u) {
            memcpy(u + n, extra, (size_t)k + 1);
            t = u;
            n += (size_t)k;
        }
    }
    return srv_reply(c, 200, "text/plain; version=0.0.4", t, n);
}

static enum MHD_Result bad(srv_conn *c, const char *param, const char *msg) {
    srv_error e;
    srv_fail(&e, 400, "invalid_request_error", param, NULL, "%s", msg);
    return srv_reply_error(c, &e);
}

/* /tokenize {"content": TEXT, "add_special": false, "parse_special": true, "with_pieces": false}
 *   -> {"tokens": [ids]} or [{"id", "piece"}];
 * /detokenize {"tokens": [ids]} -> {"content": TEXT}. */
enum MHD_Result srv_route_tokenize(srv_conn *c, bool detokenize) {
    const cllm_tokenizer *t = c->s->tok;
    json_error_t je;
    json_t *root = json_loadb(c->body.p ? c->body.p : "", c->body.len, 0, &je);
    enum MHD_Result r;
    if (!json_is_object(root)) {
        r = bad(c, NULL, "request body must be a JSON object");
    } else if (detokenize) {
        json_t *toks = json_object_get(root, "tokens");
        size_t n = json_array_size(toks);
        int32_t *ids = malloc(sizeof(int32_t) * (n ? n : 1));
        bool ok = json_is_array(toks) && ids;
        for (size_t i = 0; ok && i < n; i++) {
            json_t *x = json_array_get(toks, i);
            ok = json_is_integer(x) && json_integer_value(x) >= 0 &&
                 json_integer_value(x) < cllm_tokenizer_vocab_size(t);
            if (ok) ids[i] = (int32_t)json_integer_value(x);
        }
        char *text = NULL;
        size_t len = 0;
        if (!ok)
            r = bad(c, "tokens", "'tokens' must be an array of token ids");
        else if (cllm_tokenizer_decode(t, ids, n, false, &text, &len))
            r = bad(c, "tokens", cllm_last_error());
        else
            r = srv_reply_json(c, 200, json_pack("{s:s%}", "content", text, len));
        free(text);
        free(ids);
    } else {
        json_t *content = json_object_get(root, "content");
        json_t *add = json_object_get(root, "add_special"),
               *ps = json_object_get(root, "parse_special");
        bool pieces = json_is_true(json_object_get(root, "with_pieces"));
        int32_t *ids = NULL;
        size_t n = 0;
        if (!json_is_string(content)) {
            r = bad(c, "content", "'content' must be a string");
        } else if (cllm_tokenizer_encode(t, json_string_value(content), json_string_length(content),
                                         json_is_true(add), !ps || json_is_true(ps), &ids, &n)) {
            r = bad(c, "content", cllm_last_error());
        } else {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                if (!pieces) {
                    json_array_append_new(arr, json_integer(ids[i]));
                    continue;
                }
                char *p = NULL;
                size_t len = 0;
                if (cllm_tokenizer_decode(t, &ids[i], 1, false, &p, &len)) len = 0;
                json_array_append_new(
                    arr, json_pack("{s:i,s:s%}", "id", ids[i], "piece", p ? p : "", len));
                free(p);
            }
            r = srv_reply_json(c, 200, json_pack("{s:o}", "tokens", arr));
        }
        free(ids);
    }
    json_decref(root);
    return r;
}
