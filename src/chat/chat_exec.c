/* chat_exec.c - runs template statements (output, if, for, set, macro, break/continue) and owns
 * the public parse / render / free entry points. */
#include "chat/chat_internal.h"

#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                                     \
    do {                                                                                           \
        cllm_status st_ = (x);                                                                     \
        if (st_) return st_;                                                                       \
    } while (0)

enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

static cllm_status nomem(void) {
    return CLLM_ERR_NOMEM;
}

static cllm_status step(chat_rt *rt, int line) {
    if (++rt->steps > CHAT_MAX_STEPS)
        return err_set(CLLM_ERR_LIMIT, "chat template line %d: more than %llu loop iterations",
                       line, (unsigned long long)CHAT_MAX_STEPS);
    return CLLM_OK;
}

static chat_frame *frame_new(chat_rt *rt, chat_frame *parent) {
    chat_frame *f = chat_alloc(&rt->arena, sizeof(*f));
    if (!f) return NULL;
    f->parent = parent;
    f->vars = cv_dict(rt);
    return f->vars ? f : NULL;
}

static cllm_status bind(chat_rt *rt, chat_frame *f, const char *name, cv *v) {
    cv *k = cv_str(rt, name, strlen(name));
    if (!k || !cv_dict_set(rt, f->vars, k, v)) return nomem();
    return CLLM_OK;
}

static cllm_status unpack(chat_rt *rt, chat_frame *f, const char *const *names, int n, cv *v,
                          int line) {
    if (v->kind != CV_LIST)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: cannot unpack '%s' into %d "
                       "names",
                       line, cv_type_name(v), n);
    if (v->u.list.n != (size_t)n)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: expected %d values to unpack, got %zu", line, n,
                       v->u.list.n);
    for (int i = 0; i < n; i++)
        TRY(bind(rt, f, names[i], v->u.list.v[i]));
    return CLLM_OK;
}

static cllm_status exec_for(chat_rt *rt, chat_frame *f, const chat_node *n) {
    cv *seq, **items;
    size_t count;
    TRY(chat_eval(rt, f, n->a, &seq));
    TRY(chat_iter(rt, seq, n->line, &items, &count));
    if (n->b) { /* `for x in xs if cond`: loop.* counts only the kept items */
        cv **kept = count ? chat_alloc(&rt->arena, count * sizeof(cv *)) : NULL;
        if (count && !kept) return nomem();
        size_t k = 0;
        for (size_t i = 0; i < count; i++) {
            TRY(step(rt, n->line));
            chat_frame *lf = frame_new(rt, f);
            if (!lf) return nomem();
            if (n->op)
                TRY(unpack(rt, lf, n->names, n->nnames, items[i], n->line));
            else
                TRY(bind(rt, lf, n->names[0], items[i]));
            cv *c;
            TRY(chat_eval(rt, lf, n->b, &c));
            if (cv_truthy(c)) kept[k++] = items[i];
        }
        items = kept;
        count = k;
    }
    chat_loop *L = chat_alloc(&rt->arena, sizeof(*L));
    cv *lv = chat_alloc(&rt->arena, sizeof(cv));
    if (!L || !lv) return nomem();
    L->length = (int64_t)count;
    L->items = items;
    lv->kind = CV_LOOP;
    lv->u.loop = L;
    for (size_t i = 0; i < count; i++) {
        TRY(step(rt, n->line));
        /* each iteration gets a fresh scope, as in jinja2: a {% set %} in one iteration is not
         * seen by the next one nor after the loop */
        chat_frame *lf = frame_new(rt, f);
        if (!lf) return nomem();
        L->index0 = (int64_t)i;
        if (n->op)
            TRY(unpack(rt, lf, n->names, n->nnames, items[i], n->line));
        else
            TRY(bind(rt, lf, n->names[0], items[i]));
        TRY(bind(rt, lf, "loop", lv));
        int flow = FLOW_NORMAL;
        TRY(chat_exec_body(rt, lf, n->c, &flow));
        if (flow == FLOW_BREAK) break;
    }
    if (!count && n->d) {
        int flow = FLOW_NORMAL;
        return chat_exec_body(rt, f, n->d, &flow);
    }
    return CLLM_OK;
}

static cllm_status render_to_string(chat_rt *rt, chat_frame *f, const chat_node *body, cv **out) {
    strbuf buf = CHAT_BUF_INIT;
    strbuf *saved = rt->out;
    rt->out = &buf;
    int flow = FLOW_NORMAL;
    cllm_status st = chat_exec_body(rt, f, body, &flow);
    rt->out = saved;
    if (st) {
        sb_free(&buf);
        return st;
    }
    *out = cv_str_take_buf(rt, &buf);
    return *out ? CLLM_OK : CLLM_ERR_LIMIT;
}

cllm_status chat_call_macro(chat_rt *rt, cv *fn, const cv_args *a, cv **out) {
    const chat_node *m = fn->u.fn.macro;
    TRY(step(rt, a->line));
    if (a->npos > m->nnames)
        return err_set(CLLM_ERR_INVALID_ARG,
                       "chat template line %d: macro '%s' takes not more than %d argument(s)",
                       a->line, m->name, m->nnames);
    chat_frame *mf = frame_new(rt, fn->u.fn.closure);
    if (!mf) return nomem();
    for (int k = 0; k < a->nkw; k++) {
        bool known = false;
        for (int p = 0; p < m->nnames; p++)
            if (!strcmp(a->kwn[k], m->names[p])) known = true;
        if (!known)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: macro '%s' has no argument '%s'", a->line,
                           m->name, a->kwn[k]);
    }
    for (int p = 0; p < m->nnames; p++) {
        cv *v = p < a->npos ? a->pos[p] : chat_arg(a, -1, m->names[p]);
        if (!v && m->items2[p]) TRY(chat_eval(rt, mf, m->items2[p], &v));
        if (!v && !(v = cv_undef(rt, m->names[p]))) return nomem();
        TRY(bind(rt, mf, m->names[p], v));
    }
    if (++rt->depth > 1000) {
        rt->depth--;
        return err_set(CLLM_ERR_LIMIT, "chat template line %d: macro calls nested too deeply",
                       a->line);
    }
    cllm_status st = render_to_string(rt, mf, m->c, out);
    rt->depth--;
    return st;
}

static cllm_status exec_set(chat_rt *rt, chat_frame *f, const chat_node *n) {
    cv *v;
    if (n->kind == N_SETBLOCK) {
        TRY(render_to_string(rt, f, n->c, &v));
        return bind(rt, f, n->names[0], v);
    }
    TRY(chat_eval(rt, f, n->a, &v));
    if (n->name2) {
        cv *ns = NULL;
        size_t len = strlen(n->names[0]);
        for (chat_frame *p = f; p && !ns; p = p->parent)
            ns = cv_dict_get(p->vars, n->names[0], len);
        if (!ns || ns->kind != CV_NS)
            return err_set(CLLM_ERR_INVALID_ARG,
                           "chat template line %d: can only assign attributes of a namespace "
                           "object ('%s' is %s)",
                           n->line, n->names[0], ns ? cv_type_name(ns) : "undefined");
        cv *k = cv_str(rt, n->name2, strlen(n->name2));
        if (!k || !cv_dict_set(rt, ns, k, v)) return nomem();
        return CLLM_OK;
    }
    if (n->nnames > 1) return unpack(rt, f, n->names, n->nnames, v, n->line);
    return bind(rt, f, n->names[0], v);
}

static cllm_status exec_node(chat_rt *rt, chat_frame *f, const chat_node *n, int *flow) {
    cv *v;
    switch (n->kind) {
    case N_DATA:
        return sb_append(rt->out, n->name, n->name_len);
    case N_OUTPUT:
        TRY(chat_eval(rt, f, n->a, &v));
        if (!cv_write(rt->out, v, false)) return rt->out->err ? rt->out->err : CLLM_ERR_UNSUPPORTED;
        return CLLM_OK;
    case N_IF:
        TRY(chat_eval(rt, f, n->a, &v));
        if (cv_truthy(v)) return chat_exec_body(rt, f, n->c, flow);
        return n->d ? chat_exec_body(rt, f, n->d, flow) : CLLM_OK;
    case N_FOR:
        return exec_for(rt, f, n);
    case N_SET:
    case N_SETBLOCK:
        return exec_set(rt, f, n);
    case N_MACRO: {
        cv *fn = chat_alloc(&rt->arena, sizeof(cv));
        if (!fn) return nomem();
        fn->kind = CV_FUNC;
        fn->u.fn.name = n->name;
        fn->u.fn.macro = n;
        fn->u.fn.closure = f;
        return bind(rt, f, n->name, fn);
    }
    case N_BREAK:
        *flow = FLOW_BREAK;
        return CLLM_OK;
    case N_CONTINUE:
        *flow = FLOW_CONTINUE;
        return CLLM_OK;
    case N_GENERATION:
        return chat_exec_body(rt, f, n->c, flow);
    default:
        return err_set(CLLM_ERR_INTERNAL, "chat template line %d: unexpected node", n->line);
    }
}

cllm_status chat_exec_body(chat_rt *rt, chat_frame *f, const chat_node *body, int *flow) {
    if (++rt->depth > 1000) {
        rt->depth--;
        return err_set(CLLM_ERR_LIMIT, "chat template: statements nested too deeply");
    }
    cllm_status st = CLLM_OK;
    for (int i = 0; i < body->nitems && !st; i++) {
        st = exec_node(rt, f, body->items[i], flow);
        if (*flow != FLOW_NORMAL) break;
    }
    rt->depth--;
    return st;
}

cllm_status chat_template_parse(const char *src, size_t len, chat_template **out) {
    *out = NULL;
    chat_template *t = calloc(1, sizeof(*t));
    if (!t) return err_set(CLLM_ERR_NOMEM, "chat template: out of memory");
    t->arena.limit = (size_t)64 << 20;
    chat_token *toks;
    size_t ntoks;
    cllm_status st = chat_lex(&t->arena, src, len, &toks, &ntoks);
    if (!st) st = chat_parse_tokens(&t->arena, toks, ntoks, &t->root);
    if (st) {
        chat_template_free(t);
        return st;
    }
    *out = t;
    return CLLM_OK;
}

void chat_template_free(chat_template *t) {
    if (!t) return;
    chat_arena_free(&t->arena);
    free(t);
}

cllm_status chat_template_render(const chat_template *t, const json_t *context, char **out,
                                 size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    if (!t || !json_is_object(context))
        return err_set(CLLM_ERR_INVALID_ARG, "chat template: context must be a JSON object");
    chat_rt rt = {0};
    strbuf buf = CHAT_BUF_INIT;
    rt.out = &buf;
    cllm_status st = CLLM_OK;
    chat_frame *g = frame_new(&rt, NULL);
    chat_frame *top = g ? frame_new(&rt, g) : NULL;
    if (!top) {
        st = CLLM_ERR_NOMEM;
        goto done;
    }
    chat_install_globals(&rt, g->vars);
    rt.globals = g;
    const char *k;
    json_t *jv;
    json_object_foreach((json_t *)context, k, jv) {
        cv *v = cv_from_json(&rt, jv, 0);
        cv *key = v ? cv_str(&rt, k, strlen(k)) : NULL;
        if (!key || !cv_dict_set(&rt, top->vars, key, v)) {
            st = CLLM_ERR_NOMEM;
            goto done;
        }
    }
    int flow = 0;
    st = chat_exec_body(&rt, top, t->root, &flow);
    if (!st) st = sb_status(&buf);
done:
    chat_arena_free(&rt.arena);
    if (st) {
        sb_free(&buf);
        return st;
    }
    if (!buf.p && sb_append(&buf, "", 0) != CLLM_OK) return CLLM_ERR_NOMEM;
    *out = buf.p;
    if (len) *len = buf.len;
    return CLLM_OK;
}
