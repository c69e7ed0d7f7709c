/* chat_methods.c - the Python str and dict methods templates call (strip, split, startswith,
 * replace, items, get, ...), bound to their object as callable values. */
#define _GNU_SOURCE /* memmem */
#include "chat/chat_internal.h"

#include <string.h>
#include <utf8proc.h>

#define TRY(x)                                                                                     \
    do {                                                                                           \
        cllm_status st_ = (x);                                                                     \
        if (st_) return st_;                                                                       \
    } while (0)

static cllm_status ret(cv **out, cv *v) {
    *out = v;
    return v ? CLLM_OK : CLLM_ERR_NOMEM;
}

static cllm_status want_str(const cv_args *a, cv *v, const char *what) {
    if (!v || v->kind != CV_STR)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: %s must be a string, not %s",
                       a->line, what, v ? cv_type_name(v) : "nothing");
    return CLLM_OK;
}

static bool in_chars(uint32_t c, const cv *chars) {
    for (size_t i = 0; i < chars->u.str.n;)
        if (utf8_next(chars->u.str.s, chars->u.str.n, &i) == c) return true;
    return false;
}

cllm_status chat_str_strip(chat_rt *rt, cv *s, cv *chars, int mode, cv **out) {
    if (chars && chars->kind == CV_NONE) chars = NULL;
    if (chars && chars->kind != CV_STR)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template: strip arg must be None or str");
    const char *p = s->u.str.s;
    size_t n = s->u.str.n, b = 0, e = n;
    if (mode != 'R')
        while (b < n) {
            size_t j = b;
            uint32_t c = utf8_next(p, n, &j);
            if (chars ? !in_chars(c, chars) : !py_isspace(c)) break;
            b = j;
        }
    if (mode != 'L')
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)p[st] & 0xc0) == 0x80)
                st--;
            size_t j = st;
            uint32_t c = utf8_next(p, e, &j);
            if (chars ? !in_chars(c, chars) : !py_isspace(c)) break;
            e = st;
        }
    if (b == 0 && e == n) return ret(out, s);
    return ret(out, cv_str(rt, p + b, e - b));
}

static bool is_cased(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}

static void put_cp(strbuf *b, uint32_t c) {
    utf8proc_uint8_t u[4];
    utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)c, u);
    sb_append(b, (const char *)u, (size_t)n);
}

cllm_status chat_str_case(chat_rt *rt, cv *s, int mode, cv **out) {
    strbuf b = CHAT_BUF_INIT;
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s->u.str.n;) {
        uint32_t c = utf8_next(s->u.str.s, s->u.str.n, &i);
        int32_t r = (int32_t)c;
        if (mode == 'U') {
            r = utf8proc_toupper(r);
        } else if (mode == 'L') {
            r = utf8proc_tolower(r);
        } else if (mode == 'C') {
            r = first ? utf8proc_totitle(r) : utf8proc_tolower(r);
        } else { /* Python str.title */
            bool cased = is_cased(c);
            r = cased ? (prev_cased ? utf8proc_tolower(r) : utf8proc_totitle(r)) : r;
            prev_cased = cased;
        }
        first = false;
        put_cp(&b, (uint32_t)r);
    }
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

static cllm_status m_strip(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_strip(rt, s, chat_arg(a, 0, "chars"), 'B', out);
}
static cllm_status m_lstrip(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_strip(rt, s, chat_arg(a, 0, "chars"), 'L', out);
}
static cllm_status m_rstrip(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_strip(rt, s, chat_arg(a, 0, "chars"), 'R', out);
}
static cllm_status m_upper(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_case(rt, s, 'U', out);
}
static cllm_status m_lower(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_case(rt, s, 'L', out);
}
static cllm_status m_title(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_case(rt, s, 'T', out);
}
static cllm_status m_capitalize(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return chat_str_case(rt, s, 'C', out);
}

static cllm_status push_piece(chat_rt *rt, cv *l, size_t *n, const char *p, size_t len) {
    if (*n == l->u.list.n) {
        size_t cap = l->u.list.n ? l->u.list.n * 2 : 8;
        cv **v = chat_alloc(&rt->arena, cap * sizeof(cv *));
        if (!v) return CLLM_ERR_NOMEM;
        if (*n) memcpy(v, l->u.list.v, *n * sizeof(cv *));
        l->u.list.v = v;
        l->u.list.n = cap;
    }
    return (l->u.list.v[(*n)++] = cv_str(rt, p, len)) ? CLLM_OK : CLLM_ERR_NOMEM;
}

static cllm_status m_split(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    cv *sep = chat_arg(a, 0, "sep"), *mx = chat_arg(a, 1, "maxsplit");
    int64_t maxsplit = mx && mx->kind == CV_INT ? mx->u.i : -1;
    if (sep && sep->kind == CV_NONE) sep = NULL;
    if (sep) TRY(want_str(a, sep, "split separator"));
    if (sep && !sep->u.str.n)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: empty separator", a->line);
    cv *l = cv_list(rt, 0);
    if (!l) return CLLM_ERR_NOMEM;
    size_t n = 0;
    const char *p = s->u.str.s;
    size_t len = s->u.str.n;
    if (sep) {
        size_t i = 0;
        for (;;) {
            const char *hit =
                maxsplit != 0 ? memmem(p + i, len - i, sep->u.str.s, sep->u.str.n) : NULL;
            if (!hit) break;
            TRY(push_piece(rt, l, &n, p + i, (size_t)(hit - (p + i))));
            i = (size_t)(hit - p) + sep->u.str.n;
            if (maxsplit > 0) maxsplit--;
        }
        TRY(push_piece(rt, l, &n, p + i, len - i));
    } else {
        size_t i = 0;
        for (;;) {
            while (i < len) { /* skip whitespace */
                size_t j = i;
                if (!py_isspace(utf8_next(p, len, &j))) break;
                i = j;
            }
            if (i >= len) break;
            if (maxsplit == 0) {
                size_t e = len;
                while (e > i) { /* the remainder loses trailing whitespace */
                    size_t st = e - 1;
                    while (st > i && ((unsigned char)p[st] & 0xc0) == 0x80)
                        st--;
                    size_t j = st;
                    if (!py_isspace(utf8_next(p, e, &j))) break;
                    e = st;
                }
                TRY(push_piece(rt, l, &n, p + i, e - i));
                break;
            }
            size_t st = i;
            while (i < len) {
                size_t j = i;
                if (py_isspace(utf8_next(p, len, &j))) break;
                i = j;
            }
            TRY(push_piece(rt, l, &n, p + st, i - st));
            if (maxsplit > 0) maxsplit--;
        }
    }
    l->u.list.n = n;
    return ret(out, l);
}

static cllm_status affix(chat_rt *rt, cv *s, const cv_args *a, cv **out, bool start) {
    cv *x = chat_arg(a, 0, NULL);
    if (!x)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: missing argument", a->line);
    cv **items = &x;
    size_t n = 1;
    if (x->kind == CV_LIST && x->u.list.tuple) {
        items = x->u.list.v;
        n = x->u.list.n;
    }
    bool r = false;
    for (size_t i = 0; i < n && !r; i++) {
        TRY(want_str(a, items[i], start ? "startswith arg" : "endswith arg"));
        size_t k = items[i]->u.str.n;
        if (k > s->u.str.n) continue;
        const char *p = start ? s->u.str.s : s->u.str.s + s->u.str.n - k;
        r = !k || !memcmp(p, items[i]->u.str.s, k);
    }
    return ret(out, cv_bool(r));
}
static cllm_status m_startswith(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return affix(rt, s, a, out, true);
}
static cllm_status m_endswith(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return affix(rt, s, a, out, false);
}

static cllm_status m_replace(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    cv *old = chat_arg(a, 0, "old"), *nw = chat_arg(a, 1, "new"), *cnt = chat_arg(a, 2, "count");
    TRY(want_str(a, old, "replace arg 1"));
    TRY(want_str(a, nw, "replace arg 2"));
    int64_t count = cnt && cnt->kind == CV_INT ? cnt->u.i : -1;
    strbuf b = CHAT_BUF_INIT;
    const char *p = s->u.str.s;
    size_t len = s->u.str.n, i = 0;
    if (!old->u.str.n) { /* Python inserts `new` around every character */
        while (count != 0) {
            sb_append(&b, nw->u.str.s, nw->u.str.n);
            if (count > 0) count--;
            if (i >= len) break;
            size_t st = i;
            utf8_next(p, len, &i);
            sb_append(&b, p + st, i - st);
        }
        sb_append(&b, p + i, len - i);
    } else {
        while (count != 0) {
            const char *hit = memmem(p + i, len - i, old->u.str.s, old->u.str.n);
            if (!hit) break;
            sb_append(&b, p + i, (size_t)(hit - (p + i)));
            sb_append(&b, nw->u.str.s, nw->u.str.n);
            i = (size_t)(hit - p) + old->u.str.n;
            if (count > 0) count--;
        }
        sb_append(&b, p + i, len - i);
    }
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

static cllm_status m_join(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    cv *x = chat_arg(a, 0, NULL), **items;
    size_t n;
    if (!x)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: join needs an argument",
                       a->line);
    TRY(chat_iter(rt, x, a->line, &items, &n));
    strbuf b = CHAT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (items[i]->kind != CV_STR) {
            sb_free(&b);
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: sequence item %zu: expected str instance, %s "
                           "found",
                           a->line, i, cv_type_name(items[i]));
        }
        if (i) sb_append(&b, s->u.str.s, s->u.str.n);
        sb_append(&b, items[i]->u.str.s, items[i]->u.str.n);
    }
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

static cllm_status m_find_count(chat_rt *rt, cv *s, const cv_args *a, cv **out, bool find) {
    cv *sub = chat_arg(a, 0, NULL);
    TRY(want_str(a, sub, find ? "find arg" : "count arg"));
    if (!sub->u.str.n)
        return ret(out, cv_int(rt, find ? 0 : (int64_t)utf8_count(s->u.str.s, s->u.str.n) + 1));
    int64_t count = 0;
    size_t i = 0;
    for (;;) {
        const char *hit = memmem(s->u.str.s + i, s->u.str.n - i, sub->u.str.s, sub->u.str.n);
        if (!hit) break;
        if (find)
            return ret(out,
                       cv_int(rt, (int64_t)utf8_count(s->u.str.s, (size_t)(hit - s->u.str.s))));
        count++;
        i = (size_t)(hit - s->u.str.s) + sub->u.str.n;
    }
    return ret(out, cv_int(rt, find ? -1 : count));
}
static cllm_status m_find(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return m_find_count(rt, s, a, out, true);
}
static cllm_status m_count(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return m_find_count(rt, s, a, out, false);
}

static cllm_status m_format(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    return err_set(CLLM_ERR_UNSUPPORTED, "chat template line %d: str.format is not supported",
                   a->line);
}

static cllm_status dict_view(chat_rt *rt, cv *d, int which, cv **out) {
    cv *l = cv_list(rt, d->u.dict.n);
    if (!l) return CLLM_ERR_NOMEM;
    for (size_t i = 0; i < d->u.dict.n; i++) {
        if (which == 'k') {
            l->u.list.v[i] = d->u.dict.k[i];
        } else if (which == 'v') {
            l->u.list.v[i] = d->u.dict.v[i];
        } else {
            cv *t = cv_list(rt, 2);
            if (!t) return CLLM_ERR_NOMEM;
            t->u.list.tuple = true;
            t->u.list.v[0] = d->u.dict.k[i];
            t->u.list.v[1] = d->u.dict.v[i];
            l->u.list.v[i] = t;
        }
    }
    l->u.list.gen = true; /* a dict view: prints as dict_items([...]) in Python */
    return ret(out, l);
}
static cllm_status m_items(chat_rt *rt, cv *d, const cv_args *a, cv **out) {
    return dict_view(rt, d, 'i', out);
}
static cllm_status m_keys(chat_rt *rt, cv *d, const cv_args *a, cv **out) {
    return dict_view(rt, d, 'k', out);
}
static cllm_status m_values(chat_rt *rt, cv *d, const cv_args *a, cv **out) {
    return dict_view(rt, d, 'v', out);
}
static cllm_status m_get(chat_rt *rt, cv *d, const cv_args *a, cv **out) {
    cv *k = chat_arg(a, 0, NULL), *def = chat_arg(a, 1, NULL);
    if (!k) return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: get needs a key", a->line);
    cv *v = cv_dict_getv(d, k);
    return ret(out, v ? v : def ? def : &chat_none);
}

typedef struct method {
    cv_kind kind;
    const char *name;
    cv_builtin fn;
} method;

static const method METHODS[] = {
    {CV_STR, "strip", m_strip},
    {CV_STR, "lstrip", m_lstrip},
    {CV_STR, "rstrip", m_rstrip},
    {CV_STR, "split", m_split},
    {CV_STR, "startswith", m_startswith},
    {CV_STR, "endswith", m_endswith},
    {CV_STR, "upper", m_upper},
    {CV_STR, "lower", m_lower},
    {CV_STR, "title", m_title},
    {CV_STR, "capitalize", m_capitalize},
    {CV_STR, "replace", m_replace},
    {CV_STR, "join", m_join},
    {CV_STR, "find", m_find},
    {CV_STR, "count", m_count},
    {CV_STR, "format", m_format},
    {CV_DICT, "items", m_items},
    {CV_DICT, "keys", m_keys},
    {CV_DICT, "values", m_values},
    {CV_DICT, "get", m_get},
};

cv *chat_method(chat_rt *rt, cv *self, const char *name) {
    for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS; i++) {
        if (METHODS[i].kind != self->kind || strcmp(METHODS[i].name, name)) continue;
        cv *f = chat_alloc(&rt->arena, sizeof(cv));
        if (!f) return NULL;
        f->kind = CV_FUNC;
        f->u.fn.name = METHODS[i].name;
        f->u.fn.fn = METHODS[i].fn;
        f->u.fn.self = self;
        return f;
    }
    return NULL;
}
