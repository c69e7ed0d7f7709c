/* batch.c - `cllm run --input requests.json --output responses.json`: every request goes through
 * the serving engine together (continuous batching); responses are written in request order. */
#include "cli/batch.h"

#include "cli/cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch_req {
    int32_t *ids;
    size_t n_ids;
    cllm_sampling_params sp;
    int max_tokens;
    cllm_request_id id;
    int32_t *out;
    size_t n_out, cap_out;
    char *text;
    size_t len, cap;
    cllm_finish_reason reason;
} batch_req;

static bool grow_append(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *n = realloc(*buf, nc * elem);
    if (!n) return false;
    *buf = n;
    *cap = nc;
    return true;
}

/* Sampling settings: `o` (command line), then keys of `j` (file level, then request level). */
static bool apply_sampling(json_t *j, const char *where, cllm_sampling_params *sp,
                           int *max_tokens) {
    static const char *const keys[] = {"temperature",
                                       "top_p",
                                       "top_k",
                                       "min_p",
                                       "repetition_penalty",
                                       "presence_penalty",
                                       "frequency_penalty",
                                       "max_generate_length",
                                       "seed"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        json_t *v = json_object_get(j, keys[k]);
        if (!v) continue;
        if (!json_is_number(v)) {
            cli_fail("%s: '%s' must be a number", where, keys[k]);
            return false;
        }
        double x = json_number_value(v);
        switch (k) {
        case 0:
            sp->temperature = (float)x;
            break;
        case 1:
            sp->top_p = (float)x;
            break;
        case 2:
            sp->top_k = (int)x;
            break;
        case 3:
            sp->min_p = (float)x;
            break;
        case 4:
            sp->repeat_penalty = (float)x;
            break;
        case 5:
            sp->presence_penalty = (float)x;
            break;
        case 6:
            sp->frequency_penalty = (float)x;
            break;
        case 7:
            if (x < 1 || x > (1 << 24)) {
                cli_fail("%s: max_generate_length must be in [1, 16777216]", where);
                return false;
            }
            *max_tokens = (int)x;
            break;
        default:
            if (x < 0) {
                cli_fail("%s: seed must be >= 0", where);
                return false;
            }
            sp->seed = (uint64_t)x;
        }
    }
    return true;
}

static bool request_ids(cllm_model *m, const char *model_dir, json_t *r, const char *where,
                        const cllm_chat_template **ct, int32_t **ids, size_t *n) {
    json_t *p = json_object_get(r, "prompt"), *msgs = json_object_get(r, "messages");
    if (json_is_string(p)) {
        if (cllm_tokenize(m, json_string_value(p), json_string_length(p), 1, 1, ids, n))
            return cli_fail("%s: %s", where, cllm_last_error()), false;
        return true;
    }
    if (!json_is_array(msgs))
        return cli_fail("%s: needs a string \"prompt\" or an array \"messages\"", where), false;
    if (!*ct && cllm_tokenizer_chat_template(cllm_model_tokenizer(m), ct))
        return cli_fail("%s", cllm_last_error()), false;
    json_t *tools = json_object_get(r, "tools");
    return gen_conversation_ids(m, *ct, msgs, json_is_array(tools) ? tools : NULL, where, ids, n);
}

static const char *reason_name(cllm_finish_reason r) {
    return r == CLLM_REASON_STOP        ? "stop"
           : r == CLLM_REASON_LENGTH    ? "length"
           : r == CLLM_REASON_CANCELLED ? "cancelled"
                                        : "error";
}

int cli_run_batch(const gen_opts *o, cllm_model *m, const char *in, const char *out) {
    json_error_t je;
    json_t *root = json_load_file(in, JSON_DECODE_INT_AS_REAL, &je), *reqs = NULL;
    batch_req *br = NULL;
    size_t n = 0;
    int rc = 1;
    cllm_engine *e = NULL;
    const cllm_chat_template *ct = NULL;
    char where[64];
    if (!root) return cli_fail("%s: not valid JSON: %s (line %d)", in, je.text, je.line);
    reqs = json_object_get(root, "requests");
    if (!json_is_array(reqs) || json_array_size(reqs) == 0) {
        cli_fail("%s: needs a non-empty array \"requests\"", in);
        goto done;
    }
    n = json_array_size(reqs);
    if (!(br = calloc(n, sizeof *br))) goto done;
    cllm_sampling_params base = o->sp;
    int base_max = (int)o->n_predict;
    if (!apply_sampling(root, in, &base, &base_max)) goto done;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(reqs, i);
        snprintf(where, sizeof where, "%s: request %zu", in, i);
        if (!json_is_object(r)) {
            cli_fail("%s: not an object", where);
            goto done;
        }
        br[i].sp = base;
        br[i].max_tokens = base_max;
        if (!apply_sampling(r, where, &br[i].sp, &br[i].max_tokens) ||
            !request_ids(m, o->model, r, where, &ct, &br[i].ids, &br[i].n_ids))
            goto done;
    }
    if (cllm_engine_create(m, &o->eng.ep, &e)) {
        cli_fail("%s", cllm_last_error());
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        cllm_request r = gen_opts_request(o, br[i].ids, br[i].n_ids);
        r.sampling = br[i].sp;
        r.max_tokens = br[i].max_tokens;
        if (cllm_engine_submit(e, &r, &br[i].id)) {
            cli_fail("%s: request %zu: %s", in, i, cllm_last_error());
            goto done;
        }
    }
    while (cllm_engine_has_work(e)) {
        const cllm_event *ev;
        size_t ne;
        if (cllm_engine_step(e, &ev, &ne)) {
            cli_fail("%s", cllm_last_error());
            goto done;
        }
        for (size_t k = 0; k < ne; k++) {
            int64_t idx = ev[k].id - br[0].id; /* ids are handed out consecutively */
            if (idx < 0 || idx >= (int64_t)n) continue;
            batch_req *b = &br[idx];
            if (ev[k].token >= 0) {
                if (!grow_append((void **)&b->out, &b->cap_out, b->n_out + 1, sizeof(int32_t)))
                    goto done;
                b->out[b->n_out++] = ev[k].token;
            }
            if (ev[k].len) {
                if (!grow_append((void **)&b->text, &b->cap, b->len + ev[k].len + 1, 1)) goto done;
                memcpy(b->text + b->len, ev[k].text, ev[k].len);
                b->len += ev[k].len;
                b->text[b->len] = 0;
            }
            if (ev[k].finished) b->reason = ev[k].finished;
        }
    }
    json_t *resp = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ids = json_array();
        for (size_t k = 0; k < br[i].n_out; k++)
            json_array_append_new(ids, json_integer(br[i].out[k]));
        json_array_append_new(resp, json_pack("{s:o,s:s%,s:s,s:I,s:I}", "output_ids", ids,
                                              "output_text", br[i].text ? br[i].text : "",
                                              br[i].len, "finish_reason", reason_name(br[i].reason),
                                              "prompt_tokens", (json_int_t)br[i].n_ids,
                                              "completion_tokens", (json_int_t)br[i].n_out));
    }
    json_t *doc = json_pack("{s:o}", "responses", resp);
    if (!doc || json_dump_file(doc, out, JSON_INDENT(1) | JSON_ENSURE_ASCII) != 0)
        cli_fail("%s: cannot write responses", out);
    else
        rc = 0;
    json_decref(doc);
    cllm_engine_stats st;
    cllm_engine_get_stats(e, &st);
    fprintf(stderr,
            "cllm: %zu requests, %lld prompt tokens (%lld from the prefix cache), %lld generated, "
            "%lld steps, %lld preemptions\n",
            n, (long long)st.prompt_tokens, (long long)st.prefix_hit_tokens,
            (long long)st.tokens_generated, (long long)st.steps, (long long)st.preemptions);
done:
    cllm_engine_free(e);
    for (size_t i = 0; br && i < n; i++) {
        free(br[i].ids);
        free(br[i].out);
        free(br[i].text);
    }
    free(br);
    json_decref(root);
    return rc;
}
