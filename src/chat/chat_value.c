/* chat_value.c - the template runtime's values: arena allocation, byte buffers, and the Python
 * semantics templates rely on (truthiness, ==, str()/repr(), UTF-8 helpers). */
#include "chat/chat_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chat_chunk {
    chat_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

void *chat_alloc(chat_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!n) n = 16;
    chat_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        size_t lim = a->limit ? a->limit : CHAT_MAX_ARENA;
        if (a->total + cap > lim) {
            err_set(CLLM_ERR_LIMIT, "chat template: memory limit of %zu bytes exceeded", lim);
            return NULL;
        }
        c = malloc(sizeof(*c) + cap);
        if (!c) {
            err_set(CLLM_ERR_NOMEM, "chat template: out of memory");
            return NULL;
        }
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *chat_strdup(chat_arena *a, const char *s, size_t n) {
    char *p = chat_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void chat_arena_free(chat_arena *a) {
    chat_chunk *c = a->head;
    while (c) {
        chat_chunk *nx = c->next;
        free(c);
        c = nx;
    }
    a->head = NULL;
    a->total = 0;
}

cv chat_none = {.kind = CV_NONE};
cv chat_true = {.kind = CV_BOOL, .u.b = true};
cv chat_false = {.kind = CV_BOOL, .u.b = false};
cv chat_undef = {.kind = CV_UNDEF};

static cv *cv_new(chat_rt *rt, cv_kind k) {
    cv *v = chat_alloc(&rt->arena, sizeof(cv));
    if (v) v->kind = k;
    return v;
}

cv *cv_int(chat_rt *rt, int64_t i) {
    cv *v = cv_new(rt, CV_INT);
    if (v) v->u.i = i;
    return v;
}

cv *cv_float(chat_rt *rt, double f) {
    cv *v = cv_new(rt, CV_FLOAT);
    if (v) v->u.f = f;
    return v;
}

cv *cv_bool(bool b) {
    return b ? &chat_true : &chat_false;
}

cv *cv_str(chat_rt *rt, const char *s, size_t n) {
    cv *v = cv_new(rt, CV_STR);
    if (!v) return NULL;
    char *p = chat_strdup(&rt->arena, s, n);
    if (!p) return NULL;
    v->u.str.s = p;
    v->u.str.n = n;
    return v;
}

cv *cv_str_take_buf(chat_rt *rt, strbuf *b) {
    cv *v = b->err ? NULL : cv_str(rt, b->p ? b->p : "", b->len);
    sb_free(b);
    return v;
}

cv *cv_list(chat_rt *rt, size_t n) {
    cv *v = cv_new(rt, CV_LIST);
    if (!v) return NULL;
    if (n) {
        if (n > CHAT_MAX_ARENA / sizeof(cv *)) {
            err_set(CLLM_ERR_LIMIT, "chat template: list too long");
            return NULL;
        }
        v->u.list.v = chat_alloc(&rt->arena, n * sizeof(cv *));
        if (!v->u.list.v) return NULL;
    }
    v->u.list.n = n;
    return v;
}

cv *cv_dict(chat_rt *rt) {
    return cv_new(rt, CV_DICT);
}

cv *cv_undef(chat_rt *rt, const char *name) {
    cv *v = cv_new(rt, CV_UNDEF);
    if (v) v->u.undef_name = name;
    return v;
}

cv *cv_dict_getv(const cv *d, const cv *key) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (cv_eq(d->u.dict.k[i], key)) return d->u.dict.v[i];
    return NULL;
}

cv *cv_dict_get(const cv *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const cv *k = d->u.dict.k[i];
        if (k->kind == CV_STR && k->u.str.n == n && !memcmp(k->u.str.s, key, n))
            return d->u.dict.v[i];
    }
    return NULL;
}

bool cv_dict_set(chat_rt *rt, cv *d, cv *key, cv *val) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (cv_eq(d->u.dict.k[i], key)) {
            d->u.dict.v[i] = val;
            return true;
        }
    return cv_dict_push(rt, d, key, val);
}

bool cv_dict_push(chat_rt *rt, cv *d, cv *key, cv *val) {
    if (d->u.dict.n == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 8;
        cv **k = chat_alloc(&rt->arena, cap * sizeof(cv *));
        cv **v = chat_alloc(&rt->arena, cap * sizeof(cv *));
        if (!k || !v) return false;
        if (d->u.dict.n) {
            memcpy(k, d->u.dict.k, d->u.dict.n * sizeof(cv *));
            memcpy(v, d->u.dict.v, d->u.dict.n * sizeof(cv *));
        }
        d->u.dict.k = k;
        d->u.dict.v = v;
        d->u.dict.cap = cap;
    }
    d->u.dict.k[d->u.dict.n] = key;
    d->u.dict.v[d->u.dict.n] = val;
    d->u.dict.n++;
    return true;
}

bool cv_truthy(const cv *v) {
    switch (v->kind) {
    case CV_UNDEF:
    case CV_NONE:
        return false;
    case CV_BOOL:
        return v->u.b;
    case CV_INT:
        return v->u.i != 0;
    case CV_FLOAT:
        return v->u.f != 0.0;
    case CV_STR:
        return v->u.str.n > 0;
    case CV_LIST:
        return v->u.list.gen || v->u.list.n > 0;
    case CV_DICT:
        return v->u.dict.n > 0;
    default:
        return true;
    }
}

static bool is_num(const cv *v) {
    return v->kind == CV_BOOL || v->kind == CV_INT || v->kind == CV_FLOAT;
}

bool cv_eq(const cv *a, const cv *b) {
    if (a == b) return true;
    if (is_num(a) && is_num(b)) {
        if (a->kind != CV_FLOAT && b->kind != CV_FLOAT) {
            int64_t x = a->kind == CV_BOOL ? a->u.b : a->u.i;
            int64_t y = b->kind == CV_BOOL ? b->u.b : b->u.i;
            return x == y;
        }
        double x = a->kind == CV_FLOAT ? a->u.f : a->kind == CV_INT ? (double)a->u.i : a->u.b;
        double y = b->kind == CV_FLOAT ? b->u.f : b->kind == CV_INT ? (double)b->u.i : b->u.b;
        return x == y;
    }
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case CV_UNDEF:
    case CV_NONE:
        return true;
    case CV_STR:
        return a->u.str.n == b->u.str.n && !memcmp(a->u.str.s, b->u.str.s, a->u.str.n);
    case CV_LIST:
        if (a->u.list.tuple != b->u.list.tuple || a->u.list.n != b->u.list.n) return false;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!cv_eq(a->u.list.v[i], b->u.list.v[i])) return false;
        return true;
    case CV_DICT:
        if (a->u.dict.n != b->u.dict.n) return false;
        for (size_t i = 0; i < a->u.dict.n; i++) {
            cv *o = cv_dict_getv(b, a->u.dict.k[i]);
            if (!o || !cv_eq(a->u.dict.v[i], o)) return false;
        }
        return true;
    default:
        return false;
    }
}

const char *cv_type_name(const cv *v) {
    switch (v->kind) {
    case CV_UNDEF:
        return "Undefined";
    case CV_NONE:
        return "NoneType";
    case CV_BOOL:
        return "bool";
    case CV_INT:
        return "int";
    case CV_FLOAT:
        return "float";
    case CV_STR:
        return "str";
    case CV_LIST:
        return v->u.list.tuple ? "tuple" : "list";
    case CV_DICT:
        return "dict";
    case CV_NS:
        return "Namespace";
    case CV_FUNC:
        return "function";
    case CV_LOOP:
        return "LoopContext";
    }
    return "?";
}

uint32_t utf8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (*i + len > n) len = 1;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; k++) {
        if ((p[*i + k] & 0xc0) != 0x80) {
            len = 1;
            cp = c;
            break;
        }
        cp = (cp << 6) | (p[*i + k] & 0x3f);
    }
    *i += len;
    return cp;
}

size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n;) {
        utf8_next(s, n, &i);
        c++;
    }
    return c;
}

bool py_isspace(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Python's float repr: the shortest digits that round-trip, fixed notation for exponents in
 * [-4, 16), scientific otherwise. */
void py_float_repr(strbuf *b, double f) {
    if (isnan(f)) {
        sb_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        sb_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[32];
    int nd = 0, neg = 0;
    const char *p = tmp;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    if (neg) sb_putc(b, '-');
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int k = 0; k <= exp; k++)
                sb_putc(b, k < nd ? digits[k] : '0');
            sb_putc(b, '.');
            if (nd > exp + 1)
                sb_append(b, digits + exp + 1, (size_t)(nd - exp - 1));
            else
                sb_putc(b, '0');
        } else {
            sb_puts(b, "0.");
            for (int k = 0; k < -exp - 1; k++)
                sb_putc(b, '0');
            sb_append(b, digits, (size_t)nd);
        }
    } else {
        sb_putc(b, digits[0]);
        if (nd > 1) {
            sb_putc(b, '.');
            sb_append(b, digits + 1, (size_t)(nd - 1));
        }
        snprintf(tmp, sizeof tmp, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        sb_puts(b, tmp);
    }
}

static void write_str_repr(strbuf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    sb_putc(b, q);
    for (size_t i = 0; i < n;) {
        size_t st = i;
        uint32_t c = utf8_next(s, n, &i);
        char esc[16];
        if (c == (uint32_t)q || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c == '\n') {
            sb_puts(b, "\\n");
        } else if (c == '\r') {
            sb_puts(b, "\\r");
        } else if (c == '\t') {
            sb_puts(b, "\\t");
        } else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            sb_puts(b, esc);
        } else {
            sb_append(b, s + st, i - st);
        }
    }
    sb_putc(b, q);
}

bool cv_write(strbuf *b, const cv *v, bool repr_mode) {
    char tmp[32];
    switch (v->kind) {
    case CV_UNDEF:
        if (repr_mode) sb_puts(b, "Undefined");
        break;
    case CV_NONE:
        sb_puts(b, "None");
        break;
    case CV_BOOL:
        sb_puts(b, v->u.b ? "True" : "False");
        break;
    case CV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        sb_puts(b, tmp);
        break;
    case CV_FLOAT:
        py_float_repr(b, v->u.f);
        break;
    case CV_STR:
        if (repr_mode)
            write_str_repr(b, v->u.str.s, v->u.str.n);
        else
            sb_append(b, v->u.str.s, v->u.str.n);
        break;
    case CV_LIST:
        if (v->u.list.gen) {
            err_set(CLLM_ERR_UNSUPPORTED,
                    "chat template: printing a generator (map/select/items result) is not "
                    "supported; add |list");
            return false;
        }
        sb_putc(b, v->u.list.tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i) sb_puts(b, ", ");
            if (!cv_write(b, v->u.list.v[i], true)) return false;
        }
        if (v->u.list.tuple && v->u.list.n == 1) sb_putc(b, ',');
        sb_putc(b, v->u.list.tuple ? ')' : ']');
        break;
    case CV_NS:
        sb_puts(b, "<Namespace ");
        /* fallthrough */
    case CV_DICT:
        sb_putc(b, '{');
        for (size_t i = 0; i < v->u.dict.n; i++) {
            if (i) sb_puts(b, ", ");
            if (!cv_write(b, v->u.dict.k[i], true)) return false;
            sb_puts(b, ": ");
            if (!cv_write(b, v->u.dict.v[i], true)) return false;
        }
        sb_putc(b, '}');
        if (v->kind == CV_NS) sb_putc(b, '>');
        break;
    default:
        err_set(CLLM_ERR_UNSUPPORTED, "chat template: printing a %s is not supported",
                cv_type_name(v));
        return false;
    }
    return b->err == CLLM_OK;
}

cv *cv_to_str(chat_rt *rt, cv *v) {
    if (v->kind == CV_STR) return v;
    strbuf b = CHAT_BUF_INIT;
    if (!cv_write(&b, v, false)) {
        sb_free(&b);
        return NULL;
    }
    return cv_str_take_buf(rt, &b);
}

bool cv_is_seq(const cv *v) {
    return v->kind == CV_LIST || v->kind == CV_STR || v->kind == CV_DICT;
}

cv *cv_from_json(chat_rt *rt, const json_t *j, int depth) {
    if (depth > CHAT_MAX_DEPTH) {
        err_set(CLLM_ERR_LIMIT, "chat template: JSON input nested deeper than %d", CHAT_MAX_DEPTH);
        return NULL;
    }
    switch (json_typeof(j)) {
    case JSON_NULL:
        return &chat_none;
    case JSON_TRUE:
        return &chat_true;
    case JSON_FALSE:
        return &chat_false;
    case JSON_INTEGER:
        return cv_int(rt, (int64_t)json_integer_value(j));
    case JSON_REAL:
        return cv_float(rt, json_real_value(j));
    case JSON_STRING:
        return cv_str(rt, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        cv *l = cv_list(rt, json_array_size(j));
        if (!l) return NULL;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!(l->u.list.v[i] = cv_from_json(rt, json_array_get(j, i), depth + 1))) return NULL;
        return l;
    }
    case JSON_OBJECT: {
        cv *d = cv_dict(rt);
        if (!d) return NULL;
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)j, k, val) {
            cv *kv = cv_str(rt, k, strlen(k));
            cv *vv = kv ? cv_from_json(rt, val, depth + 1) : NULL;
            if (!vv || !cv_dict_push(rt, d, kv, vv)) return NULL; /* JSON keys are unique */
        }
        return d;
    }
    }
    return NULL;
}
