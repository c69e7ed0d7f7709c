/* chat_filters.c - jinja2's built-in filters and tests that chat templates use, plus the globals
 * Hugging Face provides (range, namespace, dict, raise_exception, strftime_now). */
#include "chat/chat_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRY(x)                                                                                     \
    do {                                                                                           \
        cllm_status st_ = (x);                                                                     \
        if (st_) return st_;                                                                       \
    } while (0)

static cllm_status nomem(void) {
    return CLLM_ERR_NOMEM;
}
static cllm_status ret(cv **out, cv *v) {
    *out = v;
    return v ? CLLM_OK : CLLM_ERR_NOMEM;
}

static cllm_status need_str(chat_rt *rt, cv *v, cv **s) {
    *s = cv_to_str(rt, v);
    return *s ? CLLM_OK : CLLM_ERR_UNSUPPORTED;
}

static cllm_status f_length(chat_rt *rt, cv *v, int line, cv **out) {
    size_t n;
    switch (v->kind) {
    case CV_UNDEF:
        n = 0;
        break;
    case CV_STR:
        n = utf8_count(v->u.str.s, v->u.str.n);
        break;
    case CV_LIST:
        if (v->u.list.gen)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: object of type 'generator' has no len()", line);
        n = v->u.list.n;
        break;
    case CV_DICT:
    case CV_NS:
        n = v->u.dict.n;
        break;
    default:
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: object of type '%s' has no "
                       "len()",
                       line, cv_type_name(v));
    }
    return ret(out, cv_int(rt, (int64_t)n));
}

static cllm_status f_join(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv *sep = chat_arg(a, 0, "d"), *attr = chat_arg(a, 1, "attribute"), **items;
    size_t n;
    TRY(chat_iter(rt, v, a->line, &items, &n));
    if (sep) TRY(need_str(rt, sep, &sep));
    strbuf b = CHAT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        cv *it = items[i], *s;
        if (attr) {
            if (attr->kind != CV_STR) {
                sb_free(&b);
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: join attribute "
                               "must be a string",
                               a->line);
            }
            cllm_status st = chat_getitem(rt, it, attr, a->line, &it);
            if (st) {
                sb_free(&b);
                return st;
            }
        }
        if (i && sep) sb_append(&b, sep->u.str.s, sep->u.str.n);
        if (!(s = cv_to_str(rt, it))) {
            sb_free(&b);
            return CLLM_ERR_UNSUPPORTED;
        }
        sb_append(&b, s->u.str.s, s->u.str.n);
    }
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

/* jinja2's title filter: capitalize each piece between runs of [-\s({[<]. */
static cllm_status f_title(chat_rt *rt, cv *s, cv **out) {
    strbuf b = CHAT_BUF_INIT;
    bool start = true;
    for (size_t i = 0; i < s->u.str.n;) {
        size_t st = i;
        uint32_t c = utf8_next(s->u.str.s, s->u.str.n, &i);
        bool sep = py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        cv *piece = cv_str(rt, s->u.str.s + st, i - st), *conv;
        if (!piece) {
            sb_free(&b);
            return nomem();
        }
        cllm_status e = chat_str_case(rt, piece, start && !sep ? 'U' : 'L', &conv);
        if (e) {
            sb_free(&b);
            return e;
        }
        sb_append(&b, conv->u.str.s, conv->u.str.n);
        start = sep;
    }
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

static cllm_status f_indent(chat_rt *rt, cv *s, const cv_args *a, cv **out) {
    cv *w = chat_arg(a, 0, "width"), *first = chat_arg(a, 1, "first"),
       *blank = chat_arg(a, 2, "blank");
    strbuf ind = CHAT_BUF_INIT, b = CHAT_BUF_INIT;
    if (w && w->kind == CV_STR)
        sb_append(&ind, w->u.str.s, w->u.str.n);
    else {
        int64_t n = w && w->kind == CV_INT ? w->u.i : 4;
        for (int64_t k = 0; k < n && k < 1024; k++)
            sb_putc(&ind, ' ');
    }
    /* s.splitlines() on s + "\n", then join with "\n" + indent (skipping blank lines unless
     * blank=True); only \n, \r\n and \r are treated as line breaks here */
    const char *p = s->u.str.s;
    size_t n = s->u.str.n, i = 0, line = 0;
    if (first && cv_truthy(first)) sb_append(&b, ind.p, ind.len);
    while (i <= n) {
        size_t e = i;
        while (e < n && p[e] != '\n' && p[e] != '\r')
            e++;
        if (e >= n && i == n && line > 0) break;
        if (line > 0) {
            sb_putc(&b, '\n');
            if (e > i || (blank && cv_truthy(blank))) sb_append(&b, ind.p, ind.len);
        }
        sb_append(&b, p + i, e - i);
        line++;
        if (e >= n) break;
        i = e + (p[e] == '\r' && e + 1 < n && p[e + 1] == '\n' ? 2 : 1);
    }
    sb_free(&ind);
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

static cllm_status f_int(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv *def = chat_arg(a, 0, "default");
    if (v->kind == CV_INT) return ret(out, v);
    if (v->kind == CV_BOOL) return ret(out, cv_int(rt, v->u.b));
    if (v->kind == CV_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9e18)
        return ret(out, cv_int(rt, (int64_t)v->u.f));
    if (v->kind == CV_STR) {
        char *end;
        const char *s = v->u.str.s;
        long long x = strtoll(s, &end, 10);
        while (*end == ' ')
            end++;
        if (end != s && !*end) return ret(out, cv_int(rt, x));
        double d = strtod(s, &end);
        if (end != s && !*end && isfinite(d) && fabs(d) < 9e18)
            return ret(out, cv_int(rt, (int64_t)d));
    }
    return def ? ret(out, def) : ret(out, cv_int(rt, 0));
}

static cllm_status f_float(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv *def = chat_arg(a, 0, "default");
    if (v->kind == CV_FLOAT) return ret(out, v);
    if (v->kind == CV_INT || v->kind == CV_BOOL)
        return ret(out, cv_float(rt, v->kind == CV_INT ? (double)v->u.i : v->u.b));
    if (v->kind == CV_STR) {
        char *end;
        double d = strtod(v->u.str.s, &end);
        if (end != v->u.str.s && !*end) return ret(out, cv_float(rt, d));
    }
    return def ? ret(out, def) : ret(out, cv_float(rt, 0.0));
}

/* Apply test `name` (for select/reject) or look up attribute (for *attr variants). */
static cllm_status f_select(chat_rt *rt, cv *v, const cv_args *a, bool attr, bool keep, cv **out) {
    cv **items;
    size_t n;
    TRY(chat_iter(rt, v, a->line, &items, &n));
    int first_test_arg = attr ? 1 : 0;
    cv *attrname = attr ? chat_arg(a, 0, NULL) : NULL;
    if (attr && (!attrname || attrname->kind != CV_STR))
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: selectattr needs an "
                       "attribute name",
                       a->line);
    cv *test = a->npos > first_test_arg ? a->pos[first_test_arg] : NULL;
    if (test && test->kind != CV_STR)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: test name must be a string",
                       a->line);
    if (test && !chat_has_test(test->u.str.s))
        return err_set(CLLM_ERR_UNSUPPORTED, "chat template line %d: test '%s' is not supported",
                       a->line, test->u.str.s);
    cv_args ta = {.pos = a->pos + first_test_arg + 1,
                  .npos = a->npos > first_test_arg + 1 ? a->npos - first_test_arg - 1 : 0,
                  .line = a->line};
    cv *l = cv_list(rt, n);
    if (!l) return nomem();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        cv *x = items[i];
        if (attr) TRY(chat_getitem(rt, x, attrname, a->line, &x));
        bool r;
        if (test)
            TRY(chat_test(rt, test->u.str.s, x, &ta, &r));
        else
            r = cv_truthy(x);
        if (r == keep) l->u.list.v[k++] = items[i];
    }
    l->u.list.n = k;
    l->u.list.gen = true;
    return ret(out, l);
}

static cllm_status f_map(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv **items;
    size_t n;
    TRY(chat_iter(rt, v, a->line, &items, &n));
    cv *attr = chat_arg(a, -1, "attribute"), *def = chat_arg(a, -1, "default");
    cv *fname = attr ? NULL : chat_arg(a, 0, NULL);
    if (!attr && (!fname || fname->kind != CV_STR))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: map needs attribute= or a filter name", a->line);
    if (fname && !chat_has_filter(fname->u.str.s))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: filter '%s' is not "
                       "supported",
                       a->line, fname->u.str.s);
    cv_args fa = {.pos = a->pos + 1, .npos = a->npos > 1 ? a->npos - 1 : 0, .line = a->line};
    cv *l = cv_list(rt, n);
    if (!l) return nomem();
    for (size_t i = 0; i < n; i++) {
        if (attr) {
            TRY(chat_getitem(rt, items[i], attr, a->line, &l->u.list.v[i]));
            if (def && l->u.list.v[i]->kind == CV_UNDEF) l->u.list.v[i] = def;
        } else {
            TRY(chat_filter(rt, fname->u.str.s, items[i], &fa, &l->u.list.v[i]));
        }
    }
    l->u.list.gen = true;
    return ret(out, l);
}

static int cmp_ci(const void *x, const void *y, bool ci);
static bool sort_ci;
static int cmp_pair_keys(const void *x, const void *y) {
    return cmp_ci(x, y, sort_ci);
}

static int cmp_ci(const void *x, const void *y, bool ci) {
    const cv *a = (*(cv *const *)x)->u.list.v[0], *b = (*(cv *const *)y)->u.list.v[0];
    if (a->kind == CV_STR && b->kind == CV_STR) {
        size_t n = a->u.str.n < b->u.str.n ? a->u.str.n : b->u.str.n;
        for (size_t i = 0; i < n; i++) {
            int ca = (unsigned char)a->u.str.s[i], cb = (unsigned char)b->u.str.s[i];
            if (ci && ca >= 'A' && ca <= 'Z') ca += 32;
            if (ci && cb >= 'A' && cb <= 'Z') cb += 32;
            if (ca != cb) return ca - cb;
        }
        return (a->u.str.n > b->u.str.n) - (a->u.str.n < b->u.str.n);
    }
    return 0;
}

static cllm_status f_items(chat_rt *rt, cv *v, int line, bool gen, cv **out) {
    if (v->kind == CV_UNDEF) {
        cv *l = cv_list(rt, 0);
        if (l) l->u.list.gen = gen;
        return ret(out, l);
    }
    if (v->kind != CV_DICT)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: can only get item pairs "
                       "from a mapping",
                       line);
    cv *l = cv_list(rt, v->u.dict.n);
    if (!l) return nomem();
    for (size_t i = 0; i < v->u.dict.n; i++) {
        cv *t = cv_list(rt, 2);
        if (!t) return nomem();
        t->u.list.tuple = true;
        t->u.list.v[0] = v->u.dict.k[i];
        t->u.list.v[1] = v->u.dict.v[i];
        l->u.list.v[i] = t;
    }
    l->u.list.gen = gen;
    return ret(out, l);
}

static cllm_status f_dictsort(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv *cs = chat_arg(a, 0, "case_sensitive"), *by = chat_arg(a, 1, "by"),
       *rev = chat_arg(a, 2, "reverse");
    if (by && !(by->kind == CV_STR && by->u.str.n == 3 && !memcmp(by->u.str.s, "key", 3)))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: dictsort by value is not "
                       "supported",
                       a->line);
    TRY(f_items(rt, v, a->line, false, out));
    cv *l = *out;
    for (size_t i = 0; i < l->u.list.n; i++)
        if (l->u.list.v[i]->u.list.v[0]->kind != CV_STR)
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: dictsort of non-string keys is not supported",
                           a->line);
    sort_ci = !(cs && cv_truthy(cs));
    if (l->u.list.n > 1) qsort(l->u.list.v, l->u.list.n, sizeof(cv *), cmp_pair_keys);
    if (rev && cv_truthy(rev))
        for (size_t i = 0; i < l->u.list.n / 2; i++) {
            cv *t = l->u.list.v[i];
            l->u.list.v[i] = l->u.list.v[l->u.list.n - 1 - i];
            l->u.list.v[l->u.list.n - 1 - i] = t;
        }
    return CLLM_OK;
}

static cllm_status f_round(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv *pr = chat_arg(a, 0, "precision"), *m = chat_arg(a, 1, "method");
    int64_t p = pr && pr->kind == CV_INT ? pr->u.i : 0;
    if (v->kind == CV_INT && !m) return ret(out, v); /* round(int, n) stays an int */
    if (v->kind != CV_FLOAT && v->kind != CV_INT && v->kind != CV_BOOL)
        return chat_type_error(a->line, "round", v, NULL);
    if (m || p != 0)
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: round with a precision or method is not supported",
                       a->line);
    double x = v->kind == CV_FLOAT ? v->u.f : (double)(v->kind == CV_INT ? v->u.i : v->u.b);
    return ret(out, cv_float(rt, nearbyint(x))); /* Python rounds half to even */
}

static cllm_status f_unique(chat_rt *rt, cv *v, const cv_args *a, cv **out) {
    cv **items;
    size_t n;
    TRY(chat_iter(rt, v, a->line, &items, &n));
    cv *cs = chat_arg(a, 0, "case_sensitive");
    cv *l = cv_list(rt, n), *keys = cv_list(rt, n);
    if (!l || !keys) return nomem();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        cv *key = items[i];
        if (key->kind == CV_STR && !(cs && cv_truthy(cs))) TRY(chat_str_case(rt, key, 'L', &key));
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = cv_eq(keys->u.list.v[j], key);
        if (!seen) {
            keys->u.list.v[k] = key;
            l->u.list.v[k++] = items[i];
        }
    }
    l->u.list.n = k;
    l->u.list.gen = true;
    return ret(out, l);
}

static cllm_status f_escape(chat_rt *rt, cv *v, cv **out) {
    cv *s;
    TRY(need_str(rt, v, &s));
    strbuf b = CHAT_BUF_INIT;
    for (size_t i = 0; i < s->u.str.n; i++) {
        char c = s->u.str.s[i];
        const char *r = c == '&'    ? "&amp;"
                        : c == '<'  ? "&lt;"
                        : c == '>'  ? "&gt;"
                        : c == '"'  ? "&#34;"
                        : c == '\'' ? "&#39;"
                                    : NULL;
        if (r)
            sb_puts(&b, r);
        else
            sb_putc(&b, c);
    }
    return (*out = cv_str_take_buf(rt, &b)) ? CLLM_OK : CLLM_ERR_LIMIT;
}

static const char *const FILTERS[] = {
    "trim",   "upper",   "lower",    "length",     "count",   "first",      "last",
    "join",   "default", "d",        "tojson",     "items",   "list",       "string",
    "int",    "float",   "replace",  "capitalize", "title",   "safe",       "escape",
    "e",      "round",   "abs",      "unique",     "map",     "selectattr", "rejectattr",
    "select", "reject",  "dictsort", "indent",     "reverse", "wordcount",  NULL};

bool chat_has_filter(const char *name) {
    for (int i = 0; FILTERS[i]; i++)
        if (!strcmp(FILTERS[i], name)) return true;
    return false;
}

cllm_status chat_filter(chat_rt *rt, const char *f, cv *v, const cv_args *a, cv **out) {
    cv *s;
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        cv *def = chat_arg(a, 0, "default_value"), *boolean = chat_arg(a, 1, "boolean");
        bool use = v->kind == CV_UNDEF || (boolean && cv_truthy(boolean) && !cv_truthy(v));
        if (!use) return ret(out, v);
        return def ? ret(out, def) : ret(out, cv_str(rt, "", 0));
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) return f_length(rt, v, a->line, out);
    if (!strcmp(f, "tojson")) return chat_tojson(rt, v, a, out);
    if (!strcmp(f, "join")) return f_join(rt, v, a, out);
    if (!strcmp(f, "items")) return f_items(rt, v, a->line, true, out);
    if (!strcmp(f, "dictsort")) return f_dictsort(rt, v, a, out);
    if (!strcmp(f, "map")) return f_map(rt, v, a, out);
    if (!strcmp(f, "select") || !strcmp(f, "reject"))
        return f_select(rt, v, a, false, f[0] == 's', out);
    if (!strcmp(f, "selectattr") || !strcmp(f, "rejectattr"))
        return f_select(rt, v, a, true, f[0] == 's', out);
    if (!strcmp(f, "int")) return f_int(rt, v, a, out);
    if (!strcmp(f, "float")) return f_float(rt, v, a, out);
    if (!strcmp(f, "round")) return f_round(rt, v, a, out);
    if (!strcmp(f, "unique")) return f_unique(rt, v, a, out);
    if (!strcmp(f, "escape") || !strcmp(f, "e")) return f_escape(rt, v, out);
    if (!strcmp(f, "abs")) {
        if (v->kind == CV_INT)
            return v->u.i == INT64_MIN ? chat_type_error(a->line, "abs", v, NULL)
                                       : ret(out, cv_int(rt, v->u.i < 0 ? -v->u.i : v->u.i));
        if (v->kind == CV_FLOAT) return ret(out, cv_float(rt, fabs(v->u.f)));
        if (v->kind == CV_BOOL) return ret(out, cv_int(rt, v->u.b));
        return chat_type_error(a->line, "abs()", v, NULL);
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        cv **items;
        size_t n;
        if (f[0] == 'l' && v->kind == CV_LIST && v->u.list.gen)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: generator is not "
                           "reversible",
                           a->line);
        TRY(chat_iter(rt, v, a->line, &items, &n));
        if (!n) return ret(out, cv_undef(rt, NULL));
        return ret(out, items[f[0] == 'f' ? 0 : n - 1]);
    }
    if (!strcmp(f, "list")) {
        cv **items;
        size_t n;
        TRY(chat_iter(rt, v, a->line, &items, &n));
        cv *l = cv_list(rt, n);
        if (!l) return nomem();
        if (n) memcpy(l->u.list.v, items, n * sizeof(cv *));
        return ret(out, l);
    }
    if (!strcmp(f, "reverse")) {
        cv **items;
        size_t n;
        TRY(chat_iter(rt, v, a->line, &items, &n));
        cv *l = cv_list(rt, n);
        if (!l) return nomem();
        for (size_t i = 0; i < n; i++)
            l->u.list.v[i] = items[n - 1 - i];
        if (v->kind != CV_STR) {
            l->u.list.gen = true;
            return ret(out, l);
        }
        cv_args none = {.line = a->line};
        return f_join(rt, l, &none, out);
    }
    /* string filters */
    TRY(need_str(rt, v, &s));
    if (!strcmp(f, "string") || !strcmp(f, "safe")) return ret(out, s);
    if (!strcmp(f, "trim")) return chat_str_strip(rt, s, chat_arg(a, 0, "chars"), 'B', out);
    if (!strcmp(f, "upper")) return chat_str_case(rt, s, 'U', out);
    if (!strcmp(f, "lower")) return chat_str_case(rt, s, 'L', out);
    if (!strcmp(f, "capitalize")) return chat_str_case(rt, s, 'C', out);
    if (!strcmp(f, "title")) return f_title(rt, s, out);
    if (!strcmp(f, "indent")) return f_indent(rt, s, a, out);
    if (!strcmp(f, "wordcount")) {
        int64_t words = 0;
        bool in = false;
        for (size_t i = 0; i < s->u.str.n;) {
            uint32_t c = utf8_next(s->u.str.s, s->u.str.n, &i);
            bool w = !py_isspace(c);
            if (w && !in) words++;
            in = w;
        }
        return ret(out, cv_int(rt, words));
    }
    if (!strcmp(f, "replace")) {
        cv *m = chat_method(rt, s, "replace");
        return m ? chat_call(rt, m, a, out) : nomem();
    }
    return err_set(CLLM_ERR_UNSUPPORTED, "chat template line %d: filter '%s' is not supported",
                   a->line, f);
}

/* ---- tests ---- */

static const char *const TESTS[] = {
    "defined",  "undefined",   "none",   "string",      "mapping",  "iterable", "sequence",
    "number",   "integer",     "float",  "boolean",     "true",     "false",    "even",
    "odd",      "equalto",     "eq",     "ne",          "lt",       "le",       "gt",
    "ge",       "in",          "sameas", "divisibleby", "callable", "lower",    "upper",
    "lessthan", "greaterthan", NULL};

bool chat_has_test(const char *name) {
    for (int i = 0; TESTS[i]; i++)
        if (!strcmp(TESTS[i], name)) return true;
    return false;
}

cllm_status chat_test(chat_rt *rt, const char *t, cv *v, const cv_args *a, bool *out) {
    cv *arg = chat_arg(a, 0, NULL);
    if (!strcmp(t, "defined"))
        *out = v->kind != CV_UNDEF;
    else if (!strcmp(t, "undefined"))
        *out = v->kind == CV_UNDEF;
    else if (!strcmp(t, "none"))
        *out = v->kind == CV_NONE;
    else if (!strcmp(t, "string"))
        *out = v->kind == CV_STR;
    else if (!strcmp(t, "mapping"))
        *out = v->kind == CV_DICT;
    else if (!strcmp(t, "iterable"))
        *out = v->kind == CV_UNDEF || v->kind == CV_STR || v->kind == CV_LIST ||
               v->kind == CV_DICT || v->kind == CV_LOOP;
    else if (!strcmp(t, "sequence"))
        *out = v->kind == CV_UNDEF || v->kind == CV_STR || (v->kind == CV_LIST && !v->u.list.gen) ||
               v->kind == CV_DICT;
    else if (!strcmp(t, "number"))
        *out = v->kind == CV_INT || v->kind == CV_FLOAT || v->kind == CV_BOOL;
    else if (!strcmp(t, "integer"))
        *out = v->kind == CV_INT;
    else if (!strcmp(t, "float"))
        *out = v->kind == CV_FLOAT;
    else if (!strcmp(t, "boolean"))
        *out = v->kind == CV_BOOL;
    else if (!strcmp(t, "true"))
        *out = v->kind == CV_BOOL && v->u.b;
    else if (!strcmp(t, "false"))
        *out = v->kind == CV_BOOL && !v->u.b;
    else if (!strcmp(t, "callable"))
        *out = v->kind == CV_FUNC;
    else if (!strcmp(t, "even") || !strcmp(t, "odd") || !strcmp(t, "divisibleby")) {
        if (v->kind != CV_INT && v->kind != CV_BOOL)
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: test '%s' on a %s is not supported", a->line, t,
                           cv_type_name(v));
        int64_t x = v->kind == CV_INT ? v->u.i : v->u.b, d = 2;
        if (t[0] == 'd') {
            if (!arg || arg->kind != CV_INT || arg->u.i == 0)
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: divisibleby needs a non-zero int", a->line);
            d = arg->u.i;
        }
        int64_t m = d == -1 ? 0 : x % d;
        *out = t[0] == 'o' ? m != 0 : m == 0;
    } else if (!strcmp(t, "sameas")) {
        if (!arg)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: sameas needs an "
                           "argument",
                           a->line);
        if (v->kind == CV_NONE || v->kind == CV_BOOL || arg->kind == CV_NONE ||
            arg->kind == CV_BOOL)
            *out = v->kind == arg->kind && (v->kind == CV_NONE || v->u.b == arg->u.b);
        else
            *out = v == arg;
    } else if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        cv *s = cv_to_str(rt, v), *c;
        if (!s) return CLLM_ERR_UNSUPPORTED;
        TRY(chat_str_case(rt, s, t[0] == 'l' ? 'L' : 'U', &c));
        bool cased = false;
        cv *o;
        TRY(chat_str_case(rt, s, t[0] == 'l' ? 'U' : 'L', &o));
        cased = !cv_eq(o, s) || !cv_eq(c, s);
        *out = cased && cv_eq(c, s);
    } else {
        if (!arg)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: test '%s' needs an "
                           "argument",
                           a->line, t);
        int op = !strcmp(t, "ne")                                ? CMP_NE
                 : !strcmp(t, "lt") || !strcmp(t, "lessthan")    ? CMP_LT
                 : !strcmp(t, "le")                              ? CMP_LE
                 : !strcmp(t, "gt") || !strcmp(t, "greaterthan") ? CMP_GT
                 : !strcmp(t, "ge")                              ? CMP_GE
                 : !strcmp(t, "in")                              ? CMP_IN
                                                                 : CMP_EQ;
        if (op == CMP_EQ || op == CMP_NE) {
            *out = cv_eq(v, arg) == (op == CMP_EQ);
            return CLLM_OK;
        }
        return chat_compare(op, v, arg, a->line, out);
    }
    return CLLM_OK;
}

/* ---- globals ---- */

static cllm_status g_range(chat_rt *rt, cv *self, const cv_args *a, cv **out) {
    int64_t p[3] = {0, 0, 1};
    if (a->npos < 1 || a->npos > 3 || a->nkw)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: range expects 1-3 integer "
                       "arguments",
                       a->line);
    for (int i = 0; i < a->npos; i++) {
        cv *x = a->pos[i];
        if (x->kind != CV_INT && x->kind != CV_BOOL)
            return chat_type_error(a->line, "range()", x, NULL);
        p[a->npos == 1 ? 1 : i] = x->kind == CV_INT ? x->u.i : x->u.b;
    }
    if (p[2] == 0)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: range() arg 3 must not be "
                       "zero",
                       a->line);
    double cnt = p[2] > 0 ? ceil(((double)p[1] - (double)p[0]) / (double)p[2])
                          : ceil(((double)p[0] - (double)p[1]) / (double)-p[2]);
    if (cnt < 0) cnt = 0;
    if (cnt > 100000) /* jinja2's sandbox refuses ranges above MAX_RANGE */
        return err_set(CLLM_ERR_LIMIT,
                       "chat template line %d: Range too big. The sandbox blocks "
                       "ranges larger than MAX_RANGE (100000).",
                       a->line);
    cv *l = cv_list(rt, (size_t)cnt);
    if (!l) return nomem();
    for (size_t i = 0; i < (size_t)cnt; i++)
        if (!(l->u.list.v[i] = cv_int(rt, p[0] + (int64_t)i * p[2]))) return nomem();
    return ret(out, l);
}

static cllm_status g_dictlike(chat_rt *rt, cv *self, const cv_args *a, cv **out) {
    cv *d = cv_dict(rt);
    if (!d) return nomem();
    d->kind = self ? CV_NS : CV_DICT;
    for (int i = 0; i < a->npos; i++) {
        if (a->pos[i]->kind != CV_DICT)
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: positional arguments to dict()/namespace() "
                           "must be dicts",
                           a->line);
        for (size_t k = 0; k < a->pos[i]->u.dict.n; k++)
            if (!cv_dict_set(rt, d, a->pos[i]->u.dict.k[k], a->pos[i]->u.dict.v[k])) return nomem();
    }
    for (int i = 0; i < a->nkw; i++) {
        cv *k = cv_str(rt, a->kwn[i], strlen(a->kwn[i]));
        if (!k || !cv_dict_set(rt, d, k, a->kwv[i])) return nomem();
    }
    return ret(out, d);
}

static cllm_status g_raise(chat_rt *rt, cv *self, const cv_args *a, cv **out) {
    cv *m = chat_arg(a, 0, "message");
    cv *s = m ? cv_to_str(rt, m) : NULL;
    return err_set(CLLM_ERR_INVALID_ARG, "chat template: %s", s ? s->u.str.s : "");
}

static cllm_status g_strftime(chat_rt *rt, cv *self, const cv_args *a, cv **out) {
    cv *fmt = chat_arg(a, 0, "format");
    if (!fmt || fmt->kind != CV_STR)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: strftime_now needs a format "
                       "string",
                       a->line);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char buf[512];
    size_t n = strftime(buf, sizeof buf, fmt->u.str.s, &tm);
    return ret(out, cv_str(rt, buf, n));
}

static void add_global(chat_rt *rt, cv *g, const char *name, cv_builtin fn, cv *self) {
    cv *f = chat_alloc(&rt->arena, sizeof(cv));
    cv *k = cv_str(rt, name, strlen(name));
    if (!f || !k) return;
    f->kind = CV_FUNC;
    f->u.fn.name = name;
    f->u.fn.fn = fn;
    f->u.fn.self = self;
    cv_dict_set(rt, g, k, f);
}

void chat_install_globals(chat_rt *rt, cv *g) {
    add_global(rt, g, "range", g_range, NULL);
    add_global(rt, g, "dict", g_dictlike, NULL);
    add_global(rt, g, "namespace", g_dictlike, &chat_none); /* self != NULL marks namespace */
    add_global(rt, g, "raise_exception", g_raise, NULL);
    add_global(rt, g, "strftime_now", g_strftime, NULL);
}
