/* chat_parser.c - builds the AST from chat_lex tokens, following jinja2's grammar and operator
 * precedence (filters and tests bind tighter than arithmetic; inline if binds loosest). */
#include "chat/chat_internal.h"

#include <string.h>

typedef struct parser {
    chat_arena *a;
    chat_token *t;
    size_t n, i;
    int depth;
    int loops; /* enclosing for loops, for break/continue checks */
} parser;

typedef struct nvec {
    chat_node **v;
    int n, cap;
} nvec;

typedef struct svec {
    const char **v;
    int n, cap;
} svec;

static bool nvec_push(parser *P, nvec *v, chat_node *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        chat_node **nv = chat_alloc(P->a, (size_t)cap * sizeof(*nv));
        if (!nv) return false;
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof(*nv));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static bool svec_push(parser *P, svec *v, const char *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        const char **nv = chat_alloc(P->a, (size_t)cap * sizeof(*nv));
        if (!nv) return false;
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof(*nv));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static chat_token *cur(parser *P) {
    return &P->t[P->i];
}
static chat_token *peek(parser *P, size_t k) {
    return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1];
}
static void adv(parser *P) {
    if (P->i + 1 < P->n) P->i++;
}
static bool is_op(chat_token *t, const char *op) {
    return t->type == T_OP && !strcmp(t->s, op);
}
static bool is_name(chat_token *t, const char *nm) {
    return t->type == T_NAME && !strcmp(t->s, nm);
}

static const char *tok_desc(chat_token *t) {
    switch (t->type) {
    case T_EOF:
        return "end of template";
    case T_DATA:
        return "template data";
    case T_VAR_BEGIN:
        return "'{{'";
    case T_VAR_END:
        return "end of print statement";
    case T_BLOCK_BEGIN:
        return "'{%'";
    case T_BLOCK_END:
        return "end of statement block";
    case T_NAME:
    case T_OP:
        return t->s;
    case T_STRING:
        return "string";
    case T_INT:
        return "integer";
    case T_FLOAT:
        return "float";
    }
    return "?";
}

static cllm_status syntax(parser *P, const char *expected) {
    chat_token *t = cur(P);
    return err_set(CLLM_ERR_FORMAT, "chat template line %d: expected %s, got %s", t->line, expected,
                   tok_desc(t));
}

static cllm_status expect_op(parser *P, const char *op) {
    if (!is_op(cur(P), op)) {
        char buf[16];
        snprintf(buf, sizeof buf, "'%s'", op);
        return syntax(P, buf);
    }
    adv(P);
    return CLLM_OK;
}

static chat_node *nn(parser *P, chat_nkind k, int line) {
    chat_node *n = chat_alloc(P->a, sizeof(chat_node));
    if (n) {
        n->kind = k;
        n->line = line;
    }
    return n;
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        cllm_status st_ = (x);                                                                     \
        if (st_) return st_;                                                                       \
    } while (0)
#define NEW(var, kind, line)                                                                       \
    do {                                                                                           \
        if (!((var) = nn(P, kind, line))) return CLLM_ERR_NOMEM;                                   \
    } while (0)

static cllm_status parse_expr(parser *P, bool condexpr, chat_node **out);
static cllm_status parse_unary(parser *P, bool with_filter, chat_node **out);
static cllm_status parse_or(parser *P, chat_node **out);

static cllm_status enter(parser *P) {
    if (++P->depth > CHAT_MAX_DEPTH)
        return err_set(CLLM_ERR_LIMIT, "chat template line %d: nested more than %d levels deep",
                       cur(P)->line, CHAT_MAX_DEPTH);
    return CLLM_OK;
}

/* Comma-separated expressions; a tuple if a comma appears (or `()`), else the single expression. */
static cllm_status parse_tuple(parser *P, bool condexpr, bool parens, chat_node **out) {
    int line = cur(P)->line;
    nvec items = {0};
    bool comma = false;
    for (;;) {
        chat_token *t = cur(P);
        if (items.n && (t->type == T_VAR_END || t->type == T_BLOCK_END || is_op(t, ")") ||
                        (!parens && is_name(t, "if"))))
            break;
        if (parens && !items.n && is_op(t, ")")) break;
        chat_node *e;
        TRY(parse_expr(P, condexpr, &e));
        if (!nvec_push(P, &items, e)) return CLLM_ERR_NOMEM;
        if (!is_op(cur(P), ",")) break;
        comma = true;
        adv(P);
    }
    if (items.n == 1 && !comma) {
        *out = items.v[0];
        return CLLM_OK;
    }
    if (!items.n && !parens) return syntax(P, "an expression");
    chat_node *n;
    NEW(n, N_TUPLE, line);
    n->items = items.v;
    n->nitems = items.n;
    *out = n;
    return CLLM_OK;
}

static cllm_status parse_call_args(parser *P, chat_node *n) {
    TRY(expect_op(P, "("));
    nvec pos = {0}, kwv = {0};
    svec kwn = {0};
    while (!is_op(cur(P), ")")) {
        if (pos.n || kwv.n) TRY(expect_op(P, ","));
        if (is_op(cur(P), ")")) break;
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: *args / **kwargs in calls are not supported",
                           cur(P)->line);
        chat_node *e;
        if (cur(P)->type == T_NAME && is_op(peek(P, 1), "=")) {
            const char *k = cur(P)->s;
            adv(P);
            adv(P);
            TRY(parse_expr(P, true, &e));
            if (!svec_push(P, &kwn, k) || !nvec_push(P, &kwv, e)) return CLLM_ERR_NOMEM;
        } else {
            if (kwv.n)
                return err_set(CLLM_ERR_FORMAT,
                               "chat template line %d: positional argument follows keyword "
                               "argument",
                               cur(P)->line);
            TRY(parse_expr(P, true, &e));
            if (!nvec_push(P, &pos, e)) return CLLM_ERR_NOMEM;
        }
    }
    adv(P);
    n->items = pos.v;
    n->nitems = pos.n;
    n->items2 = kwv.v;
    n->nitems2 = kwv.n;
    n->names = kwn.v;
    n->nnames = kwn.n;
    return CLLM_OK;
}

static cllm_status parse_dotted_name(parser *P, const char **out) {
    if (cur(P)->type != T_NAME) return syntax(P, "a name");
    *out = cur(P)->s;
    adv(P);
    if (is_op(cur(P), "."))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: dotted filter/test names are not supported",
                       cur(P)->line);
    return CLLM_OK;
}

static cllm_status parse_filters(parser *P, chat_node **node) {
    for (;;) {
        chat_token *t = cur(P);
        if (is_op(t, "|")) {
            adv(P);
            chat_node *f;
            NEW(f, N_FILTER, t->line);
            TRY(parse_dotted_name(P, &f->name));
            if (!chat_has_filter(f->name))
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: filter '%s' is not supported", t->line,
                               f->name);
            if (is_op(cur(P), "(")) TRY(parse_call_args(P, f));
            f->a = *node;
            *node = f;
        } else if (is_name(t, "is")) {
            adv(P);
            chat_node *f;
            NEW(f, N_TEST, t->line);
            if (is_name(cur(P), "not")) {
                f->negate = true;
                adv(P);
            }
            TRY(parse_dotted_name(P, &f->name));
            if (!chat_has_test(f->name))
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: test '%s' is not supported", t->line,
                               f->name);
            chat_token *c = cur(P);
            if (is_op(c, "(")) {
                TRY(parse_call_args(P, f));
            } else if ((c->type == T_NAME && strcmp(c->s, "else") && strcmp(c->s, "or") &&
                        strcmp(c->s, "and")) ||
                       c->type == T_STRING || c->type == T_INT || c->type == T_FLOAT ||
                       is_op(c, "[") || is_op(c, "{")) {
                /* jinja2 allows one bare argument: `x is divisibleby 3`, `x is sameas false` */
                chat_node *arg;
                TRY(parse_unary(P, false, &arg));
                f->items = chat_alloc(P->a, sizeof(chat_node *));
                if (!f->items) return CLLM_ERR_NOMEM;
                f->items[0] = arg;
                f->nitems = 1;
            }
            f->a = *node;
            *node = f;
        } else if (is_op(t, "(")) {
            chat_node *c;
            NEW(c, N_CALL, t->line);
            TRY(parse_call_args(P, c));
            c->a = *node;
            *node = c;
        } else {
            return CLLM_OK;
        }
    }
}

static cllm_status parse_subscript(parser *P, chat_node **node) {
    chat_token *t = cur(P);
    adv(P);
    if (t->s[0] == '.') {
        chat_token *a = cur(P);
        chat_node *n;
        if (a->type == T_NAME) {
            NEW(n, N_ATTR, t->line);
            n->name = a->s;
        } else if (a->type == T_INT) {
            NEW(n, N_ITEM, t->line);
            NEW(n->b, N_CONST, t->line);
            n->b->op = T_INT;
            n->b->value = chat_alloc(P->a, sizeof(cv));
            if (!n->b->value) return CLLM_ERR_NOMEM;
            n->b->value->kind = CV_INT;
            n->b->value->u.i = a->i;
        } else {
            return syntax(P, "a name after '.'");
        }
        adv(P);
        n->a = *node;
        *node = n;
        return CLLM_OK;
    }
    /* '[' : index or slice */
    chat_node *parts[3] = {0};
    int colons = 0;
    for (;;) {
        chat_token *c = cur(P);
        if (is_op(c, "]")) break;
        if (is_op(c, ":")) {
            if (++colons > 2) return syntax(P, "']'");
            adv(P);
            continue;
        }
        if (parts[colons]) return syntax(P, "']' or ':'");
        TRY(parse_expr(P, true, &parts[colons]));
        if (is_op(cur(P), ","))
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: tuple subscripts are not supported", c->line);
    }
    adv(P);
    chat_node *n;
    if (colons == 0) {
        if (!parts[0])
            return err_set(CLLM_ERR_FORMAT, "chat template line %d: empty subscript", t->line);
        NEW(n, N_ITEM, t->line);
        n->b = parts[0];
    } else {
        NEW(n, N_SLICE, t->line);
        n->b = parts[0];
        n->c = parts[1];
        n->d = parts[2];
    }
    n->a = *node;
    *node = n;
    return CLLM_OK;
}

static cllm_status parse_postfix(parser *P, chat_node **node) {
    for (;;) {
        chat_token *t = cur(P);
        if (is_op(t, ".") || is_op(t, "[")) {
            TRY(parse_subscript(P, node));
        } else if (is_op(t, "(")) {
            chat_node *c;
            NEW(c, N_CALL, t->line);
            TRY(parse_call_args(P, c));
            c->a = *node;
            *node = c;
        } else {
            return CLLM_OK;
        }
    }
}

static cllm_status make_const(parser *P, int line, cv_kind k, chat_node **out) {
    chat_node *n;
    NEW(n, N_CONST, line);
    n->value = chat_alloc(P->a, sizeof(cv));
    if (!n->value) return CLLM_ERR_NOMEM;
    n->value->kind = k;
    *out = n;
    return CLLM_OK;
}

static cllm_status parse_primary(parser *P, chat_node **out) {
    chat_token *t = cur(P);
    int line = t->line;
    if (t->type == T_NAME) {
        const char *s = t->s;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "false") ||
            !strcmp(s, "False")) {
            TRY(make_const(P, line, CV_BOOL, out));
            (*out)->value->u.b = s[0] == 't' || s[0] == 'T';
        } else if (!strcmp(s, "none") || !strcmp(s, "None")) {
            TRY(make_const(P, line, CV_NONE, out));
        } else {
            NEW(*out, N_NAME, line);
            (*out)->name = s;
        }
        adv(P);
    } else if (t->type == T_STRING) {
        /* adjacent string literals concatenate */
        size_t total = 0, k = 0;
        while (peek(P, k)->type == T_STRING)
            total += peek(P, k++)->n;
        char *buf = chat_alloc(P->a, total + 1);
        if (!buf) return CLLM_ERR_NOMEM;
        size_t off = 0;
        while (cur(P)->type == T_STRING) {
            memcpy(buf + off, cur(P)->s, cur(P)->n);
            off += cur(P)->n;
            adv(P);
        }
        TRY(make_const(P, line, CV_STR, out));
        (*out)->value->u.str.s = buf;
        (*out)->value->u.str.n = total;
    } else if (t->type == T_INT) {
        TRY(make_const(P, line, CV_INT, out));
        (*out)->value->u.i = t->i;
        adv(P);
    } else if (t->type == T_FLOAT) {
        TRY(make_const(P, line, CV_FLOAT, out));
        (*out)->value->u.f = t->f;
        adv(P);
    } else if (is_op(t, "(")) {
        adv(P);
        TRY(parse_tuple(P, true, true, out));
        TRY(expect_op(P, ")"));
    } else if (is_op(t, "[") || is_op(t, "{")) {
        bool dict = t->s[0] == '{';
        const char *close = dict ? "}" : "]";
        adv(P);
        nvec keys = {0}, vals = {0};
        while (!is_op(cur(P), close)) {
            if (keys.n) TRY(expect_op(P, ","));
            if (is_op(cur(P), close)) break;
            chat_node *k, *v;
            TRY(parse_expr(P, true, &k));
            if (!nvec_push(P, &keys, k)) return CLLM_ERR_NOMEM;
            if (dict) {
                TRY(expect_op(P, ":"));
                TRY(parse_expr(P, true, &v));
                if (!nvec_push(P, &vals, v)) return CLLM_ERR_NOMEM;
            }
        }
        adv(P);
        NEW(*out, dict ? N_DICT : N_LIST, line);
        (*out)->items = keys.v;
        (*out)->nitems = keys.n;
        (*out)->items2 = vals.v;
        (*out)->nitems2 = vals.n;
    } else {
        return syntax(P, "an expression");
    }
    return CLLM_OK;
}

static cllm_status parse_unary(parser *P, bool with_filter, chat_node **out) {
    TRY(enter(P));
    chat_token *t = cur(P);
    if (is_op(t, "-") || is_op(t, "+")) {
        adv(P);
        chat_node *n;
        NEW(n, t->s[0] == '-' ? N_NEG : N_POS, t->line);
        TRY(parse_unary(P, false, &n->a));
        *out = n;
    } else {
        TRY(parse_primary(P, out));
    }
    TRY(parse_postfix(P, out));
    if (with_filter) TRY(parse_filters(P, out));
    P->depth--;
    return CLLM_OK;
}

static cllm_status binop(parser *P, chat_node **lhs, int op, chat_node *rhs, int line) {
    chat_node *n;
    NEW(n, N_BIN, line);
    n->op = op;
    n->a = *lhs;
    n->b = rhs;
    *lhs = n;
    return CLLM_OK;
}

static cllm_status parse_pow(parser *P, chat_node **out) {
    TRY(parse_unary(P, true, out));
    while (is_op(cur(P), "**")) {
        int line = cur(P)->line;
        adv(P);
        chat_node *r;
        TRY(parse_unary(P, true, &r));
        TRY(binop(P, out, 'P', r, line));
    }
    return CLLM_OK;
}

static cllm_status parse_math2(parser *P, chat_node **out) {
    TRY(parse_pow(P, out));
    for (;;) {
        chat_token *t = cur(P);
        int op = is_op(t, "*")    ? '*'
                 : is_op(t, "/")  ? '/'
                 : is_op(t, "//") ? 'F'
                 : is_op(t, "%")  ? '%'
                                  : 0;
        if (!op) return CLLM_OK;
        adv(P);
        chat_node *r;
        TRY(parse_pow(P, &r));
        TRY(binop(P, out, op, r, t->line));
    }
}

static cllm_status parse_concat(parser *P, chat_node **out) {
    TRY(parse_math2(P, out));
    while (is_op(cur(P), "~")) {
        int line = cur(P)->line;
        adv(P);
        chat_node *r;
        TRY(parse_math2(P, &r));
        TRY(binop(P, out, '~', r, line));
    }
    return CLLM_OK;
}

static cllm_status parse_math1(parser *P, chat_node **out) {
    TRY(parse_concat(P, out));
    for (;;) {
        chat_token *t = cur(P);
        int op = is_op(t, "+") ? '+' : is_op(t, "-") ? '-' : 0;
        if (!op) return CLLM_OK;
        adv(P);
        chat_node *r;
        TRY(parse_concat(P, &r));
        TRY(binop(P, out, op, r, t->line));
    }
}

static cllm_status parse_compare(parser *P, chat_node **out) {
    int line = cur(P)->line;
    chat_node *first;
    TRY(parse_math1(P, &first));
    nvec rhs = {0};
    int ops[64], nops = 0;
    for (;;) {
        chat_token *t = cur(P);
        int op = -1;
        if (is_op(t, "=="))
            op = CMP_EQ;
        else if (is_op(t, "!="))
            op = CMP_NE;
        else if (is_op(t, "<"))
            op = CMP_LT;
        else if (is_op(t, "<="))
            op = CMP_LE;
        else if (is_op(t, ">"))
            op = CMP_GT;
        else if (is_op(t, ">="))
            op = CMP_GE;
        else if (is_name(t, "in"))
            op = CMP_IN;
        else if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
            op = CMP_NOTIN;
            adv(P);
        }
        if (op < 0) break;
        if (nops == 64)
            return err_set(CLLM_ERR_LIMIT,
                           "chat template line %d: comparison chain "
                           "too long",
                           t->line);
        adv(P);
        chat_node *r;
        TRY(parse_math1(P, &r));
        if (!nvec_push(P, &rhs, r)) return CLLM_ERR_NOMEM;
        ops[nops++] = op;
    }
    if (!nops) {
        *out = first;
        return CLLM_OK;
    }
    chat_node *n;
    NEW(n, N_CMP, line);
    n->a = first;
    n->items = rhs.v;
    n->nitems = rhs.n;
    n->ops = chat_alloc(P->a, (size_t)nops * sizeof(int));
    if (!n->ops) return CLLM_ERR_NOMEM;
    memcpy(n->ops, ops, (size_t)nops * sizeof(int));
    *out = n;
    return CLLM_OK;
}

static cllm_status parse_not(parser *P, chat_node **out) {
    if (is_name(cur(P), "not")) {
        chat_node *n;
        NEW(n, N_NOT, cur(P)->line);
        adv(P);
        TRY(enter(P));
        TRY(parse_not(P, &n->a));
        P->depth--;
        *out = n;
        return CLLM_OK;
    }
    return parse_compare(P, out);
}

static cllm_status parse_and(parser *P, chat_node **out) {
    TRY(parse_not(P, out));
    while (is_name(cur(P), "and")) {
        chat_node *n;
        NEW(n, N_AND, cur(P)->line);
        adv(P);
        n->a = *out;
        TRY(parse_not(P, &n->b));
        *out = n;
    }
    return CLLM_OK;
}

static cllm_status parse_or(parser *P, chat_node **out) {
    TRY(parse_and(P, out));
    while (is_name(cur(P), "or")) {
        chat_node *n;
        NEW(n, N_OR, cur(P)->line);
        adv(P);
        n->a = *out;
        TRY(parse_and(P, &n->b));
        *out = n;
    }
    return CLLM_OK;
}

static cllm_status parse_expr(parser *P, bool condexpr, chat_node **out) {
    TRY(enter(P));
    TRY(parse_or(P, out));
    while (condexpr && is_name(cur(P), "if")) {
        chat_node *n;
        NEW(n, N_COND, cur(P)->line);
        adv(P);
        n->b = *out;
        TRY(parse_or(P, &n->a));
        if (is_name(cur(P), "else")) {
            adv(P);
            TRY(parse_expr(P, true, &n->c));
        }
        *out = n;
    }
    P->depth--;
    return CLLM_OK;
}

/* ---- statements ---- */

static cllm_status parse_body(parser *P, const char *const *ends, chat_node **out);

static cllm_status expect_block_end(parser *P) {
    if (cur(P)->type != T_BLOCK_END) return syntax(P, "end of statement block");
    adv(P);
    return CLLM_OK;
}

static cllm_status parse_for(parser *P, chat_node *n) {
    svec targets = {0};
    for (;;) {
        if (cur(P)->type != T_NAME) {
            if (is_op(cur(P), "("))
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: parenthesized for-loop targets are not "
                               "supported",
                               n->line);
            return syntax(P, "a loop variable name");
        }
        if (!svec_push(P, &targets, cur(P)->s)) return CLLM_ERR_NOMEM;
        adv(P);
        if (!is_op(cur(P), ",")) break;
        adv(P);
    }
    if (!is_name(cur(P), "in")) return syntax(P, "'in'");
    adv(P);
    n->names = targets.v;
    n->nnames = targets.n;
    n->op = targets.n > 1; /* unpack each item into several names */
    TRY(parse_tuple(P, false, false, &n->a));
    if (is_name(cur(P), "if")) {
        adv(P);
        TRY(parse_expr(P, true, &n->b));
    }
    if (is_name(cur(P), "recursive"))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: recursive for loops are not supported", n->line);
    TRY(expect_block_end(P));
    static const char *const ends[] = {"endfor", "else", NULL};
    P->loops++;
    TRY(parse_body(P, ends, &n->c));
    P->loops--;
    if (is_name(cur(P), "else")) {
        adv(P);
        TRY(expect_block_end(P));
        static const char *const ends2[] = {"endfor", NULL};
        TRY(parse_body(P, ends2, &n->d));
    }
    adv(P); /* endfor */
    return expect_block_end(P);
}

static cllm_status parse_if(parser *P, chat_node *n) {
    TRY(parse_tuple(P, true, false, &n->a));
    TRY(expect_block_end(P));
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    TRY(parse_body(P, ends, &n->c));
    if (is_name(cur(P), "elif")) {
        chat_node *e;
        NEW(e, N_IF, cur(P)->line);
        adv(P);
        TRY(parse_if(P, e)); /* consumes through endif */
        NEW(n->d, N_BODY, e->line);
        n->d->items = chat_alloc(P->a, sizeof(chat_node *));
        if (!n->d->items) return CLLM_ERR_NOMEM;
        n->d->items[0] = e;
        n->d->nitems = 1;
        return CLLM_OK;
    }
    if (is_name(cur(P), "else")) {
        adv(P);
        TRY(expect_block_end(P));
        static const char *const ends2[] = {"endif", NULL};
        TRY(parse_body(P, ends2, &n->d));
    }
    adv(P); /* endif */
    return expect_block_end(P);
}

static cllm_status parse_set(parser *P, chat_node *n) {
    svec targets = {0};
    if (cur(P)->type != T_NAME) return syntax(P, "a variable name");
    if (!svec_push(P, &targets, cur(P)->s)) return CLLM_ERR_NOMEM;
    adv(P);
    if (is_op(cur(P), ".")) {
        adv(P);
        if (cur(P)->type != T_NAME) return syntax(P, "an attribute name");
        n->name2 = cur(P)->s;
        adv(P);
    } else {
        while (is_op(cur(P), ",")) {
            adv(P);
            if (cur(P)->type != T_NAME) return syntax(P, "a variable name");
            if (!svec_push(P, &targets, cur(P)->s)) return CLLM_ERR_NOMEM;
            adv(P);
        }
    }
    n->names = targets.v;
    n->nnames = targets.n;
    if (cur(P)->type == T_BLOCK_END && !n->name2 && targets.n == 1) {
        adv(P);
        n->kind = N_SETBLOCK;
        static const char *const ends[] = {"endset", NULL};
        TRY(parse_body(P, ends, &n->c));
        adv(P);
        return expect_block_end(P);
    }
    if (is_op(cur(P), "|"))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: filtered {%% set %%} blocks are not supported",
                       n->line);
    TRY(expect_op(P, "="));
    TRY(parse_tuple(P, true, false, &n->a));
    return expect_block_end(P);
}

static cllm_status parse_macro(parser *P, chat_node *n) {
    if (cur(P)->type != T_NAME) return syntax(P, "a macro name");
    n->name = cur(P)->s;
    adv(P);
    TRY(expect_op(P, "("));
    svec params = {0};
    nvec defs = {0};
    while (!is_op(cur(P), ")")) {
        if (params.n) TRY(expect_op(P, ","));
        if (cur(P)->type != T_NAME) return syntax(P, "a parameter name");
        if (!svec_push(P, &params, cur(P)->s)) return CLLM_ERR_NOMEM;
        adv(P);
        chat_node *d = NULL;
        if (is_op(cur(P), "=")) {
            adv(P);
            TRY(parse_expr(P, true, &d));
        } else if (defs.n && defs.v[defs.n - 1]) {
            return err_set(CLLM_ERR_FORMAT,
                           "chat template line %d: non-default argument follows default argument",
                           n->line);
        }
        if (!nvec_push(P, &defs, d)) return CLLM_ERR_NOMEM;
    }
    adv(P);
    TRY(expect_block_end(P));
    n->names = params.v;
    n->nnames = params.n;
    n->items2 = defs.v;
    n->nitems2 = defs.n;
    static const char *const ends[] = {"endmacro", NULL};
    int saved = P->loops;
    P->loops = 0;
    TRY(parse_body(P, ends, &n->c));
    P->loops = saved;
    adv(P);
    if (cur(P)->type == T_NAME) adv(P); /* {% endmacro name %} */
    return expect_block_end(P);
}

static const char *const UNSUPPORTED_TAGS[] = {"call",       "filter",  "with",   "block",
                                               "extends",    "include", "import", "from",
                                               "autoescape", "do",      "trans",  NULL};

static cllm_status parse_stmt(parser *P, chat_node **out) {
    chat_token *t = cur(P);
    if (t->type != T_NAME) return syntax(P, "a statement name");
    const char *kw = t->s;
    int line = t->line;
    adv(P);
    chat_node *n;
    if (!strcmp(kw, "if")) {
        NEW(n, N_IF, line);
        TRY(parse_if(P, n));
    } else if (!strcmp(kw, "for")) {
        NEW(n, N_FOR, line);
        TRY(parse_for(P, n));
    } else if (!strcmp(kw, "set")) {
        NEW(n, N_SET, line);
        TRY(parse_set(P, n));
    } else if (!strcmp(kw, "macro")) {
        NEW(n, N_MACRO, line);
        TRY(parse_macro(P, n));
    } else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        if (!P->loops)
            return err_set(CLLM_ERR_FORMAT, "chat template line %d: '%s' outside of a loop", line,
                           kw);
        NEW(n, kw[0] == 'b' ? N_BREAK : N_CONTINUE, line);
        TRY(expect_block_end(P));
    } else if (!strcmp(kw, "generation")) {
        NEW(n, N_GENERATION, line);
        TRY(expect_block_end(P));
        static const char *const ends[] = {"endgeneration", NULL};
        TRY(parse_body(P, ends, &n->c));
        adv(P);
        TRY(expect_block_end(P));
    } else {
        for (int i = 0; UNSUPPORTED_TAGS[i]; i++)
            if (!strcmp(kw, UNSUPPORTED_TAGS[i]))
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: {%% %s %%} is not supported", line, kw);
        return err_set(CLLM_ERR_FORMAT, "chat template line %d: unknown tag '%s'", line, kw);
    }
    *out = n;
    return CLLM_OK;
}

/* Parse statements until a {% <one of ends> %} tag (left as the current token: its name) or EOF. */
static cllm_status parse_body(parser *P, const char *const *ends, chat_node **out) {
    TRY(enter(P));
    chat_node *body;
    NEW(body, N_BODY, cur(P)->line);
    nvec items = {0};
    for (;;) {
        chat_token *t = cur(P);
        chat_node *n = NULL;
        if (t->type == T_EOF) {
            if (ends && ends[0])
                return err_set(CLLM_ERR_FORMAT,
                               "chat template line %d: unexpected end of template, expected "
                               "'%s'",
                               t->line, ends[ends[1] && !strcmp(ends[0], "elif") ? 2 : 0]);
            break;
        }
        if (t->type == T_DATA) {
            NEW(n, N_DATA, t->line);
            n->name = t->s;
            n->name_len = t->n;
            adv(P);
        } else if (t->type == T_VAR_BEGIN) {
            adv(P);
            NEW(n, N_OUTPUT, t->line);
            TRY(parse_tuple(P, true, false, &n->a));
            if (cur(P)->type != T_VAR_END) return syntax(P, "end of print statement");
            adv(P);
        } else if (t->type == T_BLOCK_BEGIN) {
            chat_token *k = peek(P, 1);
            bool is_end = false;
            for (int i = 0; ends && ends[i]; i++)
                if (is_name(k, ends[i])) is_end = true;
            if (is_end) {
                adv(P);
                break;
            }
            if (k->type == T_NAME &&
                (!strncmp(k->s, "end", 3) || !strcmp(k->s, "elif") || !strcmp(k->s, "else")))
                return err_set(CLLM_ERR_FORMAT, "chat template line %d: unexpected '%s'", k->line,
                               k->s);
            adv(P);
            TRY(parse_stmt(P, &n));
        } else {
            return syntax(P, "template data or a tag");
        }
        if (!nvec_push(P, &items, n)) return CLLM_ERR_NOMEM;
    }
    body->items = items.v;
    body->nitems = items.n;
    *out = body;
    P->depth--;
    return CLLM_OK;
}

cllm_status chat_parse_tokens(chat_arena *a, chat_token *toks, size_t ntoks, chat_node **root) {
    parser P = {.a = a, .t = toks, .n = ntoks};
    return parse_body(&P, NULL, root);
}
