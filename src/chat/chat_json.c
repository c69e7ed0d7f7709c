/* chat_json.c - the tojson filter as Hugging Face defines it: Python's json.dumps(value,
 * ensure_ascii=False, indent=..., separators=..., sort_keys=...). */
#include "chat/chat_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct json_opts {
    int indent; /* <0: compact single line */
    bool sort_keys, ensure_ascii;
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
} json_opts;

static void put_str(strbuf *b, const char *s, size_t n, bool ascii) {
    sb_putc(b, '"');
    char esc[16];
    for (size_t i = 0; i < n;) {
        size_t st = i;
        uint32_t c = utf8_next(s, n, &i);
        switch (c) {
        case '"':
            sb_puts(b, "\\\"");
            break;
        case '\\':
            sb_puts(b, "\\\\");
            break;
        case '\n':
            sb_puts(b, "\\n");
            break;
        case '\r':
            sb_puts(b, "\\r");
            break;
        case '\t':
            sb_puts(b, "\\t");
            break;
        case '\b':
            sb_puts(b, "\\b");
            break;
        case '\f':
            sb_puts(b, "\\f");
            break;
        default:
            if (c < 0x20 || (ascii && c > 0x7e)) {
                if (c >= 0x10000) {
                    uint32_t v = c - 0x10000;
                    snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (v >> 10),
                             0xdc00 + (v & 0x3ff));
                } else {
                    snprintf(esc, sizeof esc, "\\u%04x", c);
                }
                sb_puts(b, esc);
            } else {
                sb_append(b, s + st, i - st);
            }
        }
    }
    sb_putc(b, '"');
}

static void newline(strbuf *b, const json_opts *o, int level) {
    sb_putc(b, '\n');
    for (int k = 0; k < level * o->indent; k++)
        sb_putc(b, ' ');
}

/* JSON object keys: str as is; int/float/bool/None converted like json.dumps does. */
static cllm_status key_string(chat_rt *rt, const cv *k, strbuf *kb, int line) {
    switch (k->kind) {
    case CV_STR:
        sb_append(kb, k->u.str.s, k->u.str.n);
        return CLLM_OK;
    case CV_BOOL:
        sb_puts(kb, k->u.b ? "true" : "false");
        return CLLM_OK;
    case CV_NONE:
        sb_puts(kb, "null");
        return CLLM_OK;
    case CV_INT:
    case CV_FLOAT:
        cv_write(kb, k, false);
        return CLLM_OK;
    default:
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: keys must be str, int, float, bool or None, not %s",
                       line, cv_type_name(k));
    }
}

typedef struct kv_pair {
    strbuf key;
    const cv *val;
} kv_pair;

static int cmp_pairs(const void *x, const void *y) {
    const kv_pair *a = x, *b = y;
    size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
    int c = n ? memcmp(a->key.p, b->key.p, n) : 0;
    return c ? c : (a->key.len > b->key.len) - (a->key.len < b->key.len);
}

static cllm_status dump(chat_rt *rt, strbuf *b, const cv *v, const json_opts *o, int level,
                        int line) {
    if (level > CHAT_MAX_DEPTH)
        return err_set(CLLM_ERR_LIMIT, "chat template line %d: tojson: value nested too deeply",
                       line);
    switch (v->kind) {
    case CV_NONE:
        sb_puts(b, "null");
        break;
    case CV_BOOL:
        sb_puts(b, v->u.b ? "true" : "false");
        break;
    case CV_INT:
        cv_write(b, v, false);
        break;
    case CV_FLOAT:
        if (isnan(v->u.f))
            sb_puts(b, "NaN");
        else if (isinf(v->u.f))
            sb_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else
            py_float_repr(b, v->u.f);
        break;
    case CV_STR:
        put_str(b, v->u.str.s, v->u.str.n, o->ensure_ascii);
        break;
    case CV_LIST:
        if (v->u.list.gen)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: tojson: Object of type generator is not JSON "
                           "serializable",
                           line);
        if (!v->u.list.n) {
            sb_puts(b, "[]");
            break;
        }
        sb_putc(b, '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i) sb_append(b, o->item_sep, o->item_sep_n);
            if (o->indent >= 0) newline(b, o, level + 1);
            cllm_status st = dump(rt, b, v->u.list.v[i], o, level + 1, line);
            if (st) return st;
        }
        if (o->indent >= 0) newline(b, o, level);
        sb_putc(b, ']');
        break;
    case CV_DICT: {
        size_t n = v->u.dict.n;
        if (!n) {
            sb_puts(b, "{}");
            break;
        }
        kv_pair *pairs = calloc(n, sizeof(*pairs));
        if (!pairs) return err_set(CLLM_ERR_NOMEM, "chat template: out of memory");
        cllm_status st = CLLM_OK;
        for (size_t i = 0; i < n && !st; i++) {
            pairs[i].key.limit = CHAT_MAX_OUTPUT;
            st = key_string(rt, v->u.dict.k[i], &pairs[i].key, line);
            pairs[i].val = v->u.dict.v[i];
        }
        if (!st && o->sort_keys) qsort(pairs, n, sizeof(*pairs), cmp_pairs);
        if (!st) sb_putc(b, '{');
        for (size_t i = 0; i < n && !st; i++) {
            if (i) sb_append(b, o->item_sep, o->item_sep_n);
            if (o->indent >= 0) newline(b, o, level + 1);
            put_str(b, pairs[i].key.p ? pairs[i].key.p : "", pairs[i].key.len, o->ensure_ascii);
            sb_append(b, o->key_sep, o->key_sep_n);
            st = dump(rt, b, pairs[i].val, o, level + 1, line);
        }
        if (!st && o->indent >= 0) newline(b, o, level);
        if (!st) sb_putc(b, '}');
        for (size_t i = 0; i < n; i++)
            sb_free(&pairs[i].key);
        free(pairs);
        if (st) return st;
        break;
    }
    default:
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: tojson: Object of type %s is not JSON serializable",
                       line, cv_type_name(v));
    }
    return sb_status(b);
}

cllm_status chat_tojson(chat_rt *rt, cv *val, const cv_args *a, cv **out) {
    json_opts o = {.indent = -1};
    cv *ind = chat_arg(a, 1, "indent"), *sk = chat_arg(a, 3, "sort_keys");
    cv *ea = chat_arg(a, 0, "ensure_ascii"), *sep = chat_arg(a, 2, "separators");
    /* HF's signature is tojson(x, ensure_ascii=False, indent=None, separators=None,
     * sort_keys=False), so a bare positional argument is ensure_ascii. */
    if (ind && ind->kind == CV_INT) {
        o.indent = ind->u.i < 0 ? 0 : ind->u.i > 64 ? 64 : (int)ind->u.i;
    } else if (ind && ind->kind != CV_NONE) {
        return err_set(CLLM_ERR_UNSUPPORTED, "chat template line %d: tojson indent must be an int",
                       a->line);
    }
    o.sort_keys = sk && cv_truthy(sk);
    o.ensure_ascii = ea && cv_truthy(ea);
    o.item_sep = o.indent >= 0 ? "," : ", ";
    o.key_sep = ": ";
    if (sep && sep->kind != CV_NONE) {
        if (sep->kind != CV_LIST || sep->u.list.n != 2 || sep->u.list.v[0]->kind != CV_STR ||
            sep->u.list.v[1]->kind != CV_STR)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: tojson separators must be two strings", a->line);
        o.item_sep = sep->u.list.v[0]->u.str.s;
        o.key_sep = sep->u.list.v[1]->u.str.s;
        o.item_sep_n = sep->u.list.v[0]->u.str.n;
        o.key_sep_n = sep->u.list.v[1]->u.str.n;
    } else {
        o.item_sep_n = strlen(o.item_sep);
        o.key_sep_n = strlen(o.key_sep);
    }
    strbuf b = CHAT_BUF_INIT;
    cllm_status st = dump(rt, &b, val, &o, 0, a->line);
    if (st) {
        sb_free(&b);
        return st;
    }
    *out = cv_str_take_buf(rt, &b);
    return *out ? CLLM_OK : CLLM_ERR_LIMIT;
}
