/* chat_eval.c - evaluates template expressions with Python/jinja2 semantics: name lookup through
 * frames, attribute/item access, slicing, arithmetic, comparisons, calls, filters and tests. */
#define _GNU_SOURCE /* memmem */
#include "chat/chat_internal.h"

#include <math.h>
#include <string.h>

#define TRY(x)                                                                                     \
    do {                                                                                           \
        cllm_status st_ = (x);                                                                     \
        if (st_) return st_;                                                                       \
    } while (0)
#define CHAT_MAX_RT_DEPTH 1000

cllm_status chat_type_error(int line, const char *what, const cv *a, const cv *b) {
    const cv *u = a->kind == CV_UNDEF ? a : b && b->kind == CV_UNDEF ? b : NULL;
    if (u) {
        if (u->u.undef_name)
            return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: '%s' is undefined", line,
                           u->u.undef_name);
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: undefined value used in %s",
                       line, what);
    }
    if (b)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: unsupported operand type(s) for %s: '%s' and '%s'",
                       line, what, cv_type_name(a), cv_type_name(b));
    return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: bad operand type for %s: '%s'",
                   line, what, cv_type_name(a));
}

static cllm_status nomem(void) {
    return CLLM_ERR_NOMEM;
}

cv *chat_arg(const cv_args *a, int pos, const char *name) {
    for (int i = 0; name && i < a->nkw; i++)
        if (!strcmp(a->kwn[i], name)) return a->kwv[i];
    return pos >= 0 && pos < a->npos ? a->pos[pos] : NULL;
}

cllm_status chat_iter(chat_rt *rt, cv *v, int line, cv ***items, size_t *n) {
    switch (v->kind) {
    case CV_UNDEF:
        *items = NULL;
        *n = 0;
        return CLLM_OK;
    case CV_LIST:
        *items = v->u.list.v;
        *n = v->u.list.n;
        return CLLM_OK;
    case CV_DICT:
        *items = v->u.dict.k;
        *n = v->u.dict.n;
        return CLLM_OK;
    case CV_STR: {
        size_t cnt = utf8_count(v->u.str.s, v->u.str.n);
        cv *l = cv_list(rt, cnt);
        if (!l) return nomem();
        size_t i = 0;
        for (size_t k = 0; k < cnt; k++) {
            size_t st = i;
            utf8_next(v->u.str.s, v->u.str.n, &i);
            if (!(l->u.list.v[k] = cv_str(rt, v->u.str.s + st, i - st))) return nomem();
        }
        *items = l->u.list.v;
        *n = cnt;
        return CLLM_OK;
    }
    default:
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: '%s' object is not iterable",
                       line, cv_type_name(v));
    }
}

static cv *lookup(chat_frame *f, const char *name) {
    size_t n = strlen(name);
    for (; f; f = f->parent) {
        cv *v = cv_dict_get(f->vars, name, n);
        if (v) return v;
    }
    return NULL;
}

static cllm_status undefined_error(int line, const cv *u) {
    if (u->u.undef_name)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: '%s' is undefined", line,
                       u->u.undef_name);
    return err_set(CLLM_ERR_INVALID_ARG,
                   "chat template line %d: attribute or item of an "
                   "undefined value",
                   line);
}

static cllm_status loop_attr(chat_rt *rt, cv *obj, const char *name, int line, cv **out);

cllm_status chat_getattr(chat_rt *rt, cv *obj, const char *name, int line, cv **out) {
    size_t n = strlen(name);
    switch (obj->kind) {
    case CV_UNDEF:
        return undefined_error(line, obj);
    case CV_DICT: {
        cv *m = chat_method(rt, obj, name);
        if (m) {
            *out = m;
            return CLLM_OK;
        }
        cv *v = cv_dict_get(obj, name, n);
        *out = v ? v : cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    }
    case CV_NS: {
        cv *v = cv_dict_get(obj, name, n);
        *out = v ? v : cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    }
    case CV_LOOP:
        return loop_attr(rt, obj, name, line, out);
    default: {
        cv *m = chat_method(rt, obj, name);
        *out = m ? m : cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    }
    }
}

static bool to_index(const cv *k, int64_t *i) {
    if (k->kind == CV_INT) {
        *i = k->u.i;
        return true;
    }
    if (k->kind == CV_BOOL) {
        *i = k->u.b;
        return true;
    }
    return false;
}

/* Byte offset of code point `idx` in s (idx <= count). */
static size_t utf8_offset(const char *s, size_t n, size_t idx) {
    size_t i = 0;
    for (size_t k = 0; k < idx && i < n; k++)
        utf8_next(s, n, &i);
    return i;
}

cllm_status chat_getitem(chat_rt *rt, cv *obj, cv *key, int line, cv **out) {
    int64_t idx;
    switch (obj->kind) {
    case CV_UNDEF:
        return undefined_error(line, obj);
    case CV_DICT: {
        cv *v = cv_dict_getv(obj, key);
        if (v) {
            *out = v;
            return CLLM_OK;
        }
        break;
    }
    case CV_LIST:
        if (to_index(key, &idx)) {
            int64_t len = (int64_t)obj->u.list.n;
            if (idx < 0) idx += len;
            *out = idx >= 0 && idx < len ? obj->u.list.v[idx] : cv_undef(rt, NULL);
            return *out ? CLLM_OK : nomem();
        }
        break;
    case CV_STR:
        if (to_index(key, &idx)) {
            int64_t len = (int64_t)utf8_count(obj->u.str.s, obj->u.str.n);
            if (idx < 0) idx += len;
            if (idx < 0 || idx >= len) {
                *out = cv_undef(rt, NULL);
                return *out ? CLLM_OK : nomem();
            }
            size_t a = utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)idx), b = a;
            utf8_next(obj->u.str.s, obj->u.str.n, &b);
            *out = cv_str(rt, obj->u.str.s + a, b - a);
            return *out ? CLLM_OK : nomem();
        }
        break;
    default:
        break;
    }
    /* jinja2: subscript falls back to attribute lookup for string keys */
    if (key->kind == CV_STR && obj->kind != CV_DICT)
        return chat_getattr(rt, obj, key->u.str.s, line, out);
    if (key->kind == CV_STR && obj->kind == CV_DICT) {
        cv *m = chat_method(rt, obj, key->u.str.s);
        *out = m ? m : cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    }
    *out = cv_undef(rt, NULL);
    return *out ? CLLM_OK : nomem();
}

/* Python slice semantics (PySlice_AdjustIndices). */
static cllm_status do_slice(chat_rt *rt, cv *obj, cv *lo, cv *hi, cv *stp, int line, cv **out) {
    int64_t step = 1, start, stop;
    if (stp && stp->kind != CV_NONE && !to_index(stp, &step))
        return chat_type_error(line, "slice step", stp, NULL);
    if (step == 0)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: slice step cannot be zero",
                       line);
    if (obj->kind == CV_UNDEF) return undefined_error(line, obj);
    if (obj->kind != CV_LIST && obj->kind != CV_STR)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: '%s' object is not "
                       "subscriptable",
                       line, cv_type_name(obj));
    int64_t len = obj->kind == CV_LIST ? (int64_t)obj->u.list.n
                                       : (int64_t)utf8_count(obj->u.str.s, obj->u.str.n);
    int64_t dlo = step < 0 ? len - 1 : 0, dhi = step < 0 ? -1 : len;
    if (lo && lo->kind != CV_NONE) {
        if (!to_index(lo, &start)) return chat_type_error(line, "slice", lo, NULL);
        if (start < 0)
            start = start + len < 0 ? (step < 0 ? -1 : 0) : start + len;
        else if (start >= len)
            start = step < 0 ? len - 1 : len;
    } else {
        start = dlo;
    }
    if (hi && hi->kind != CV_NONE) {
        if (!to_index(hi, &stop)) return chat_type_error(line, "slice", hi, NULL);
        if (stop < 0)
            stop = stop + len < 0 ? (step < 0 ? -1 : 0) : stop + len;
        else if (stop >= len)
            stop = step < 0 ? len - 1 : len;
    } else {
        stop = dhi;
    }
    size_t cnt = 0;
    if (step > 0 && start < stop) cnt = (size_t)((stop - start - 1) / step + 1);
    if (step < 0 && stop < start) cnt = (size_t)((start - stop - 1) / (-step) + 1);
    if (obj->kind == CV_LIST) {
        cv *l = cv_list(rt, cnt);
        if (!l) return nomem();
        l->u.list.tuple = obj->u.list.tuple;
        for (size_t k = 0; k < cnt; k++)
            l->u.list.v[k] = obj->u.list.v[start + (int64_t)k * step];
        *out = l;
        return CLLM_OK;
    }
    /* strings: index code points */
    size_t *offs = chat_alloc(&rt->arena, (size_t)(len + 1) * sizeof(size_t));
    if (!offs) return nomem();
    size_t i = 0;
    for (int64_t k = 0; k < len; k++) {
        offs[k] = i;
        utf8_next(obj->u.str.s, obj->u.str.n, &i);
    }
    offs[len] = obj->u.str.n;
    strbuf b = CHAT_BUF_INIT;
    for (size_t k = 0; k < cnt; k++) {
        int64_t c = start + (int64_t)k * step;
        sb_append(&b, obj->u.str.s + offs[c], offs[c + 1] - offs[c]);
    }
    *out = cv_str_take_buf(rt, &b);
    return *out ? CLLM_OK : CLLM_ERR_LIMIT;
}

static double num(const cv *v) {
    return v->kind == CV_FLOAT ? v->u.f : v->kind == CV_INT ? (double)v->u.i : (double)v->u.b;
}
static bool is_num(const cv *v) {
    return v->kind == CV_BOOL || v->kind == CV_INT || v->kind == CV_FLOAT;
}
static bool is_intlike(const cv *v) {
    return v->kind == CV_BOOL || v->kind == CV_INT;
}
static int64_t ival(const cv *v) {
    return v->kind == CV_INT ? v->u.i : v->u.b;
}

static cllm_status overflow(int line) {
    return err_set(CLLM_ERR_UNSUPPORTED,
                   "chat template line %d: integer result does not fit in 64 bits", line);
}

static cllm_status repeat(chat_rt *rt, cv *seq, int64_t times, int line, cv **out) {
    if (times < 0) times = 0;
    size_t unit = seq->kind == CV_STR ? seq->u.str.n : seq->u.list.n;
    if (unit && (uint64_t)times > CHAT_MAX_OUTPUT / unit)
        return err_set(CLLM_ERR_LIMIT, "chat template line %d: repetition result too large", line);
    if (seq->kind == CV_STR) {
        strbuf b = CHAT_BUF_INIT;
        for (int64_t k = 0; k < times; k++)
            sb_append(&b, seq->u.str.s, seq->u.str.n);
        *out = cv_str_take_buf(rt, &b);
        return *out ? CLLM_OK : CLLM_ERR_LIMIT;
    }
    cv *l = cv_list(rt, unit * (size_t)times);
    if (!l) return nomem();
    l->u.list.tuple = seq->u.list.tuple;
    for (size_t k = 0; k < l->u.list.n; k++)
        l->u.list.v[k] = seq->u.list.v[k % unit];
    *out = l;
    return CLLM_OK;
}

static cllm_status binary(chat_rt *rt, int op, cv *a, cv *b, int line, cv **out) {
    char opname[3] = {(char)op, 0, 0};
    if (op == 'F') strcpy(opname, "//");
    if (op == 'P') strcpy(opname, "**");
    if (op == '~') {
        cv *sa = cv_to_str(rt, a), *sb = sa ? cv_to_str(rt, b) : NULL;
        if (!sb) return CLLM_ERR_UNSUPPORTED; /* message already recorded */
        strbuf buf = CHAT_BUF_INIT;
        sb_append(&buf, sa->u.str.s, sa->u.str.n);
        sb_append(&buf, sb->u.str.s, sb->u.str.n);
        *out = cv_str_take_buf(rt, &buf);
        return *out ? CLLM_OK : CLLM_ERR_LIMIT;
    }
    if (a->kind == CV_UNDEF || b->kind == CV_UNDEF) return chat_type_error(line, opname, a, b);
    if (is_intlike(a) && is_intlike(b)) {
        int64_t x = ival(a), y = ival(b), r;
        switch (op) {
        case '+':
            if (__builtin_add_overflow(x, y, &r)) return overflow(line);
            return (*out = cv_int(rt, r)) ? CLLM_OK : nomem();
        case '-':
            if (__builtin_sub_overflow(x, y, &r)) return overflow(line);
            return (*out = cv_int(rt, r)) ? CLLM_OK : nomem();
        case '*':
            if (__builtin_mul_overflow(x, y, &r)) return overflow(line);
            return (*out = cv_int(rt, r)) ? CLLM_OK : nomem();
        case 'F':
        case '%':
            if (y == 0)
                return err_set(CLLM_ERR_INVALID_ARG,
                               "chat template line %d: integer division or modulo by zero", line);
            if (x == INT64_MIN && y == -1) return overflow(line);
            {
                int64_t q = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return (*out = cv_int(rt, op == 'F' ? q : m)) ? CLLM_OK : nomem();
            }
        case 'P':
            if (y >= 0) {
                int64_t res = 1;
                for (int64_t k = 0; k < y; k++) {
                    if (__builtin_mul_overflow(res, x, &res)) return overflow(line);
                    if (res == 0 || res == 1) break;
                }
                if (x == -1) res = (y % 2) ? -1 : 1;
                return (*out = cv_int(rt, res)) ? CLLM_OK : nomem();
            }
            break; /* negative exponent: float result below */
        default:
            break;
        }
    }
    if (is_num(a) && is_num(b)) {
        double x = num(a), y = num(b), r;
        switch (op) {
        case '+':
            r = x + y;
            break;
        case '-':
            r = x - y;
            break;
        case '*':
            r = x * y;
            break;
        case '/':
            if (y == 0)
                return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: division by zero",
                               line);
            r = x / y;
            break;
        case 'F':
        case '%':
            if (y == 0)
                return err_set(CLLM_ERR_INVALID_ARG,
                               "chat template line %d: float modulo / "
                               "division by zero",
                               line);
            { /* CPython's float_divmod */
                double m = fmod(x, y), d = (x - m) / y;
                if (m != 0) {
                    if ((y < 0) != (m < 0)) {
                        m += y;
                        d -= 1.0;
                    }
                } else {
                    m = copysign(0.0, y);
                }
                if (d != 0) {
                    double fl = floor(d);
                    if (d - fl > 0.5) fl += 1.0;
                    d = fl;
                } else {
                    d = copysign(0.0, x / y);
                }
                r = op == '%' ? m : d;
            }
            break;
        case 'P':
            if (x == 0 && y < 0)
                return err_set(CLLM_ERR_INVALID_ARG,
                               "chat template line %d: 0.0 cannot be raised to a negative power",
                               line);
            r = pow(x, y);
            break;
        default:
            return chat_type_error(line, opname, a, b);
        }
        return (*out = cv_float(rt, r)) ? CLLM_OK : nomem();
    }
    if (op == '+' && a->kind == CV_STR && b->kind == CV_STR) {
        strbuf buf = CHAT_BUF_INIT;
        sb_append(&buf, a->u.str.s, a->u.str.n);
        sb_append(&buf, b->u.str.s, b->u.str.n);
        *out = cv_str_take_buf(rt, &buf);
        return *out ? CLLM_OK : CLLM_ERR_LIMIT;
    }
    if (op == '+' && a->kind == CV_LIST && b->kind == CV_LIST &&
        a->u.list.tuple == b->u.list.tuple) {
        cv *l = cv_list(rt, a->u.list.n + b->u.list.n);
        if (!l) return nomem();
        l->u.list.tuple = a->u.list.tuple;
        if (a->u.list.n) memcpy(l->u.list.v, a->u.list.v, a->u.list.n * sizeof(cv *));
        if (b->u.list.n) memcpy(l->u.list.v + a->u.list.n, b->u.list.v, b->u.list.n * sizeof(cv *));
        *out = l;
        return CLLM_OK;
    }
    if (op == '*' && (a->kind == CV_STR || a->kind == CV_LIST) && is_intlike(b))
        return repeat(rt, a, ival(b), line, out);
    if (op == '*' && (b->kind == CV_STR || b->kind == CV_LIST) && is_intlike(a))
        return repeat(rt, b, ival(a), line, out);
    if (op == '%' && a->kind == CV_STR)
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: printf-style string formatting is not supported",
                       line);
    return chat_type_error(line, opname, a, b);
}

/* Python ordering: <0, 0, >0; error for unorderable types. */
static cllm_status order(const cv *a, const cv *b, int line, const char *op, int *res) {
    if (is_num(a) && is_num(b)) {
        if (is_intlike(a) && is_intlike(b)) {
            int64_t x = ival(a), y = ival(b);
            *res = x < y ? -1 : x > y;
        } else {
            double x = num(a), y = num(b);
            *res = x < y ? -1 : x > y ? 1 : 0;
            if (isnan(x) || isnan(y)) *res = 2; /* every ordering comparison is false */
        }
        return CLLM_OK;
    }
    if (a->kind == CV_STR && b->kind == CV_STR) {
        size_t n = a->u.str.n < b->u.str.n ? a->u.str.n : b->u.str.n;
        int c = n ? memcmp(a->u.str.s, b->u.str.s, n) : 0;
        *res = c ? (c < 0 ? -1 : 1) : a->u.str.n < b->u.str.n ? -1 : a->u.str.n > b->u.str.n;
        return CLLM_OK;
    }
    if (a->kind == CV_LIST && b->kind == CV_LIST && a->u.list.tuple == b->u.list.tuple) {
        size_t n = a->u.list.n < b->u.list.n ? a->u.list.n : b->u.list.n;
        for (size_t i = 0; i < n; i++) {
            if (cv_eq(a->u.list.v[i], b->u.list.v[i])) continue;
            return order(a->u.list.v[i], b->u.list.v[i], line, op, res);
        }
        *res = a->u.list.n < b->u.list.n ? -1 : a->u.list.n > b->u.list.n;
        return CLLM_OK;
    }
    if (a->kind == CV_UNDEF || b->kind == CV_UNDEF) return chat_type_error(line, op, a, b);
    return err_set(CLLM_ERR_INVALID_ARG,
                   "chat template line %d: '%s' not supported between instances of '%s' and '%s'",
                   line, op, cv_type_name(a), cv_type_name(b));
}

static cllm_status contains(const cv *needle, const cv *hay, int line, bool *res) {
    switch (hay->kind) {
    case CV_UNDEF:
        *res = false;
        return CLLM_OK;
    case CV_STR:
        if (needle->kind != CV_STR)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: 'in <string>' requires string as left operand, "
                           "not %s",
                           line, cv_type_name(needle));
        *res = needle->u.str.n == 0 ||
               memmem(hay->u.str.s, hay->u.str.n, needle->u.str.s, needle->u.str.n) != NULL;
        return CLLM_OK;
    case CV_LIST:
        *res = false;
        for (size_t i = 0; i < hay->u.list.n && !*res; i++)
            *res = cv_eq(hay->u.list.v[i], needle);
        return CLLM_OK;
    case CV_DICT:
        *res = cv_dict_getv(hay, needle) != NULL;
        return CLLM_OK;
    default:
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: argument of type '%s' is not iterable", line,
                       cv_type_name(hay));
    }
}

cllm_status chat_compare(int op, cv *a, cv *b, int line, bool *res) {
    static const char *const names[] = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    int o = 0;
    switch (op) {
    case CMP_EQ:
        *res = cv_eq(a, b);
        return CLLM_OK;
    case CMP_NE:
        *res = !cv_eq(a, b);
        return CLLM_OK;
    case CMP_IN:
    case CMP_NOTIN:
        TRY(contains(a, b, line, res));
        if (op == CMP_NOTIN) *res = !*res;
        return CLLM_OK;
    default:
        TRY(order(a, b, line, names[op], &o));
        *res = o == 2         ? false
               : op == CMP_LT ? o < 0
               : op == CMP_LE ? o <= 0
               : op == CMP_GT ? o > 0
                              : o >= 0;
        return CLLM_OK;
    }
}

static cllm_status eval_args(chat_rt *rt, chat_frame *f, const chat_node *n, cv_args *a) {
    a->line = n->line;
    a->npos = n->nitems;
    a->nkw = n->nitems2;
    a->kwn = n->names;
    a->pos = n->nitems ? chat_alloc(&rt->arena, (size_t)n->nitems * sizeof(cv *)) : NULL;
    a->kwv = n->nitems2 ? chat_alloc(&rt->arena, (size_t)n->nitems2 * sizeof(cv *)) : NULL;
    if ((n->nitems && !a->pos) || (n->nitems2 && !a->kwv)) return nomem();
    for (int i = 0; i < n->nitems; i++)
        TRY(chat_eval(rt, f, n->items[i], &a->pos[i]));
    for (int i = 0; i < n->nitems2; i++)
        TRY(chat_eval(rt, f, n->items2[i], &a->kwv[i]));
    return CLLM_OK;
}

static cllm_status loop_cycle(chat_rt *rt, cv *self, const cv_args *a, cv **out) {
    if (!a->npos)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: no items for cycling given",
                       a->line);
    *out = a->pos[self->u.loop->index0 % a->npos];
    return CLLM_OK;
}

static cllm_status loop_attr(chat_rt *rt, cv *obj, const char *name, int line, cv **out) {
    chat_loop *L = obj->u.loop;
    int64_t v;
    if (!strcmp(name, "index"))
        v = L->index0 + 1;
    else if (!strcmp(name, "index0"))
        v = L->index0;
    else if (!strcmp(name, "revindex"))
        v = L->length - L->index0;
    else if (!strcmp(name, "revindex0"))
        v = L->length - L->index0 - 1;
    else if (!strcmp(name, "length"))
        v = L->length;
    else if (!strcmp(name, "depth"))
        v = L->depth0 + 1;
    else if (!strcmp(name, "depth0"))
        v = L->depth0;
    else if (!strcmp(name, "first") || !strcmp(name, "last")) {
        *out = cv_bool(name[0] == 'f' ? L->index0 == 0 : L->index0 == L->length - 1);
        return CLLM_OK;
    } else if (!strcmp(name, "previtem") || !strcmp(name, "nextitem")) {
        int64_t k = L->index0 + (name[0] == 'p' ? -1 : 1);
        *out = k >= 0 && k < L->length ? L->items[k] : cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    } else if (!strcmp(name, "cycle")) {
        cv *fn = chat_alloc(&rt->arena, sizeof(cv));
        if (!fn) return nomem();
        fn->kind = CV_FUNC;
        fn->u.fn.name = "loop.cycle";
        fn->u.fn.fn = loop_cycle;
        fn->u.fn.self = obj;
        *out = fn;
        return CLLM_OK;
    } else if (!strcmp(name, "changed")) {
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: loop.changed is not "
                       "supported",
                       line);
    } else {
        *out = cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    }
    *out = cv_int(rt, v);
    return *out ? CLLM_OK : nomem();
}

cllm_status chat_call(chat_rt *rt, cv *fn, const cv_args *a, cv **out) {
    if (fn->kind == CV_UNDEF) return undefined_error(a->line, fn);
    if (fn->kind != CV_FUNC)
        return err_set(CLLM_ERR_INVALID_ARG, "chat template line %d: '%s' object is not callable",
                       a->line, cv_type_name(fn));
    if (fn->u.fn.macro) return chat_call_macro(rt, fn, a, out);
    return fn->u.fn.fn(rt, fn->u.fn.self, a, out);
}

static cllm_status eval_node(chat_rt *rt, chat_frame *f, const chat_node *n, cv **out) {
    cv *a, *b;
    switch (n->kind) {
    case N_CONST:
        *out = n->value;
        return CLLM_OK;
    case N_NAME:
        *out = lookup(f, n->name);
        if (!*out) *out = cv_undef(rt, n->name);
        return *out ? CLLM_OK : nomem();
    case N_ATTR:
        TRY(chat_eval(rt, f, n->a, &a));
        return chat_getattr(rt, a, n->name, n->line, out);
    case N_ITEM:
        TRY(chat_eval(rt, f, n->a, &a));
        TRY(chat_eval(rt, f, n->b, &b));
        return chat_getitem(rt, a, b, n->line, out);
    case N_SLICE: {
        cv *lo = NULL, *hi = NULL, *st = NULL;
        TRY(chat_eval(rt, f, n->a, &a));
        if (n->b) TRY(chat_eval(rt, f, n->b, &lo));
        if (n->c) TRY(chat_eval(rt, f, n->c, &hi));
        if (n->d) TRY(chat_eval(rt, f, n->d, &st));
        return do_slice(rt, a, lo, hi, st, n->line, out);
    }
    case N_CALL: {
        cv_args args;
        TRY(chat_eval(rt, f, n->a, &a));
        TRY(eval_args(rt, f, n, &args));
        return chat_call(rt, a, &args, out);
    }
    case N_FILTER: {
        cv_args args;
        TRY(chat_eval(rt, f, n->a, &a));
        TRY(eval_args(rt, f, n, &args));
        return chat_filter(rt, n->name, a, &args, out);
    }
    case N_TEST: {
        cv_args args;
        bool r;
        TRY(chat_eval(rt, f, n->a, &a));
        TRY(eval_args(rt, f, n, &args));
        TRY(chat_test(rt, n->name, a, &args, &r));
        *out = cv_bool(r != n->negate);
        return CLLM_OK;
    }
    case N_NEG:
    case N_POS:
        TRY(chat_eval(rt, f, n->a, &a));
        if (!is_num(a))
            return chat_type_error(n->line, n->kind == N_NEG ? "unary -" : "unary +", a, NULL);
        if (a->kind == CV_FLOAT)
            *out = cv_float(rt, n->kind == N_NEG ? -a->u.f : a->u.f);
        else if (n->kind == N_NEG && ival(a) == INT64_MIN)
            return overflow(n->line);
        else
            *out = cv_int(rt, n->kind == N_NEG ? -ival(a) : ival(a));
        return *out ? CLLM_OK : nomem();
    case N_NOT:
        TRY(chat_eval(rt, f, n->a, &a));
        *out = cv_bool(!cv_truthy(a));
        return CLLM_OK;
    case N_AND:
    case N_OR:
        TRY(chat_eval(rt, f, n->a, &a));
        if (cv_truthy(a) == (n->kind == N_OR)) {
            *out = a;
            return CLLM_OK;
        }
        return chat_eval(rt, f, n->b, out);
    case N_BIN:
        TRY(chat_eval(rt, f, n->a, &a));
        TRY(chat_eval(rt, f, n->b, &b));
        return binary(rt, n->op, a, b, n->line, out);
    case N_CMP: {
        TRY(chat_eval(rt, f, n->a, &a));
        bool r = true;
        for (int i = 0; i < n->nitems && r; i++) {
            TRY(chat_eval(rt, f, n->items[i], &b));
            TRY(chat_compare(n->ops[i], a, b, n->line, &r));
            a = b;
        }
        *out = cv_bool(r);
        return CLLM_OK;
    }
    case N_COND:
        TRY(chat_eval(rt, f, n->a, &a));
        if (cv_truthy(a)) return chat_eval(rt, f, n->b, out);
        if (n->c) return chat_eval(rt, f, n->c, out);
        *out = cv_undef(rt, NULL);
        return *out ? CLLM_OK : nomem();
    case N_LIST:
    case N_TUPLE: {
        cv *l = cv_list(rt, (size_t)n->nitems);
        if (!l) return nomem();
        l->u.list.tuple = n->kind == N_TUPLE;
        for (int i = 0; i < n->nitems; i++)
            TRY(chat_eval(rt, f, n->items[i], &l->u.list.v[i]));
        *out = l;
        return CLLM_OK;
    }
    case N_DICT: {
        cv *d = cv_dict(rt);
        if (!d) return nomem();
        for (int i = 0; i < n->nitems; i++) {
            TRY(chat_eval(rt, f, n->items[i], &a));
            TRY(chat_eval(rt, f, n->items2[i], &b));
            if (a->kind == CV_LIST && !a->u.list.tuple)
                return err_set(CLLM_ERR_INVALID_ARG,
                               "chat template line %d: unhashable type: "
                               "'list'",
                               n->line);
            if (!cv_dict_set(rt, d, a, b)) return nomem();
        }
        *out = d;
        return CLLM_OK;
    }
    default:
        return err_set(CLLM_ERR_INTERNAL, "chat template line %d: statement used as expression",
                       n->line);
    }
}

cllm_status chat_eval(chat_rt *rt, chat_frame *f, const chat_node *n, cv **out) {
    if (++rt->depth > CHAT_MAX_RT_DEPTH) {
        rt->depth--;
        return err_set(CLLM_ERR_LIMIT, "chat template line %d: evaluation nested deeper than %d",
                       n->line, CHAT_MAX_RT_DEPTH);
    }
    cllm_status st = eval_node(rt, f, n, out);
    rt->depth--;
    return st;
}
