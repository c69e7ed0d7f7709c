/* chat_internal.h - types shared by the chat-template lexer, parser and evaluator: arenas, growable
 * buffers, runtime values (Python-like), AST nodes and the render runtime. Internal to src/chat/.
 */
#ifndef CLLM_CHAT_CHAT_INTERNAL_H
#define CLLM_CHAT_CHAT_INTERNAL_H

#include "base/error.h"
#include "base/strbuf.h"
#include "chat/chat_template.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits that keep hostile templates and conversations from exhausting the machine. */
#define CHAT_MAX_DEPTH 200                  /* expression / statement / macro nesting */
#define CHAT_MAX_OUTPUT (64u << 20)         /* bytes of rendered text */
#define CHAT_MAX_ARENA ((size_t)512u << 20) /* bytes of values created during one render */
#define CHAT_MAX_STEPS 20000000ull          /* loop iterations + macro calls per render */

/* ---- arena: everything a template or a render allocates is freed at once. ---- */
typedef struct chat_chunk chat_chunk;
typedef struct chat_arena {
    chat_chunk *head;
    size_t total;
    size_t limit;
} chat_arena;

void *chat_alloc(chat_arena *a, size_t n); /* zeroed; NULL (with error set) past the limit */
char *chat_strdup(chat_arena *a, const char *s, size_t n); /* NUL-terminated copy */
void chat_arena_free(chat_arena *a);

/* ---- output buffers: base/strbuf.h, capped at CHAT_MAX_OUTPUT bytes (CLLM_ERR_LIMIT) ---- */
#define CHAT_BUF_INIT                                                                              \
    { .limit = CHAT_MAX_OUTPUT }

/* ---- values ---- */
typedef enum cv_kind {
    CV_UNDEF,
    CV_NONE,
    CV_BOOL,
    CV_INT,
    CV_FLOAT,
    CV_STR,
    CV_LIST, /* list or tuple (u.list.tuple) */
    CV_DICT,
    CV_NS,   /* namespace(): a dict whose attributes can be assigned */
    CV_FUNC, /* builtin function, bound method or macro */
    CV_LOOP, /* the `loop` variable of a for loop */
} cv_kind;

typedef struct cv cv;
typedef struct chat_rt chat_rt;
typedef struct chat_node chat_node;
typedef struct chat_frame chat_frame;

typedef struct cv_args {
    cv **pos;
    int npos;
    const char **kwn;
    cv **kwv;
    int nkw;
    int line;
} cv_args;

typedef cllm_status (*cv_builtin)(chat_rt *rt, cv *self, const cv_args *a, cv **out);

typedef struct chat_loop {
    int64_t index0, length;
    cv **items;
    int depth0;
} chat_loop;

struct cv {
    cv_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t n;
        } str;
        struct {
            cv **v;
            size_t n;
            bool tuple;
            bool gen; /* a Python generator/view in jinja2 (map, select, dict.items): printing
                         or len() of it is an error, and it is always truthy */
        } list;
        struct {
            cv **k, **v;
            size_t n, cap;
        } dict;
        struct {
            const char *name;
            cv_builtin fn;
            cv *self;
            const chat_node *macro;
            chat_frame *closure;
        } fn;
        const char *undef_name; /* for error messages; may be NULL */
        chat_loop *loop;
    } u;
};

extern cv chat_none, chat_true, chat_false, chat_undef;

cv *cv_int(chat_rt *rt, int64_t i);
cv *cv_float(chat_rt *rt, double f);
cv *cv_bool(bool b);
cv *cv_str(chat_rt *rt, const char *s, size_t n); /* copies */
cv *cv_str_take_buf(chat_rt *rt, strbuf *b);      /* copies then frees b */
cv *cv_list(chat_rt *rt, size_t n);               /* n slots, filled by caller */
cv *cv_dict(chat_rt *rt);
cv *cv_undef(chat_rt *rt, const char *name);
bool cv_dict_set(chat_rt *rt, cv *d, cv *key, cv *val);
bool cv_dict_push(chat_rt *rt, cv *d, cv *key, cv *val); /* key known to be new */
cv *cv_dict_get(const cv *d, const char *key, size_t n); /* string key; NULL if absent */
cv *cv_dict_getv(const cv *d, const cv *key);

bool cv_truthy(const cv *v);
bool cv_eq(const cv *a, const cv *b);
const char *cv_type_name(const cv *v);
/* Python str(v) (repr_mode false) or repr(v) appended to b. */
bool cv_write(strbuf *b, const cv *v, bool repr_mode);
/* str(v) as a value (strings are returned unchanged). */
cv *cv_to_str(chat_rt *rt, cv *v);
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: none), sort_keys) appended to b. */
cllm_status cv_to_json(chat_rt *rt, strbuf *b, const cv *v, int indent, bool sort_keys, int line);
cv *cv_from_json(chat_rt *rt, const json_t *j, int depth);
bool cv_is_seq(const cv *v); /* list/tuple/string/dict: iterable */
size_t utf8_count(const char *s, size_t n);
bool py_isspace(uint32_t c);
uint32_t utf8_next(const char *s, size_t n, size_t *i); /* decodes one code point, advancing *i */
void py_float_repr(strbuf *b, double f);

/* ---- AST ---- */
typedef enum chat_nkind {
    /* expressions */
    N_CONST,
    N_NAME,
    N_ATTR,
    N_ITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_NEG,
    N_POS,
    N_NOT,
    N_AND,
    N_OR,
    N_BIN, /* op: one of '+', '-', '*', '/', 'F' (//), '%', 'P' (**), '~' */
    N_CMP, /* a op items[0] op items[1] ...; ops in `ops` */
    N_COND,
    N_LIST,
    N_TUPLE,
    N_DICT,
    /* statements */
    N_DATA,
    N_OUTPUT,
    N_IF,
    N_FOR,
    N_SET,      /* names[0] (= target) or names[0].name2; tuple targets in names */
    N_SETBLOCK, /* name = rendered body */
    N_MACRO,
    N_BREAK,
    N_CONTINUE,
    N_GENERATION,
    N_BODY,
} chat_nkind;

enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN };

struct chat_node {
    chat_nkind kind;
    int line;
    int op;
    bool negate;
    const char *name;
    size_t name_len; /* N_DATA text length */
    const char *name2;
    cv *value;
    chat_node *a, *b, *c, *d;
    chat_node **items; /* args / elements / body */
    int nitems;
    chat_node **items2; /* kwarg values / dict values / else body / macro defaults */
    int nitems2;
    const char **names; /* kwarg names / for targets / macro params / set targets */
    int nnames;
    int *ops;
};

struct chat_template {
    chat_arena arena;
    chat_node *root; /* N_BODY */
};

/* ---- lexer ---- */
typedef enum chat_tok {
    T_EOF,
    T_DATA,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
} chat_tok;

typedef struct chat_token {
    chat_tok type;
    int line;
    const char *s; /* NAME/OP: text; STRING/DATA: decoded bytes */
    size_t n;
    int64_t i;
    double f;
} chat_token;

cllm_status chat_lex(chat_arena *a, const char *src, size_t len, chat_token **toks, size_t *ntoks);
cllm_status chat_parse_tokens(chat_arena *a, chat_token *toks, size_t ntoks, chat_node **root);

/* ---- render runtime ---- */
struct chat_frame {
    chat_frame *parent;
    cv *vars; /* CV_DICT */
};

struct chat_rt {
    chat_arena arena;
    strbuf *out;
    int depth;
    uint64_t steps;
    chat_frame *globals;
};

cllm_status chat_eval(chat_rt *rt, chat_frame *f, const chat_node *n, cv **out);
cllm_status chat_exec_body(chat_rt *rt, chat_frame *f, const chat_node *body, int *flow);
cllm_status chat_call(chat_rt *rt, cv *fn, const cv_args *a, cv **out);
cllm_status chat_call_macro(chat_rt *rt, cv *fn, const cv_args *a, cv **out);
cllm_status chat_compare(int op, cv *a, cv *b, int line, bool *res);
/* strip mode 'B'oth/'L'eft/'R'ight; chars NULL/None = whitespace. */
cllm_status chat_str_strip(chat_rt *rt, cv *s, cv *chars, int mode, cv **out);
/* case mode 'U'pper, 'L'ower, 'C'apitalize, 'T'itle (Python str methods). */
cllm_status chat_str_case(chat_rt *rt, cv *s, int mode, cv **out);
cllm_status chat_tojson(chat_rt *rt, cv *val, const cv_args *a, cv **out);
cllm_status chat_getattr(chat_rt *rt, cv *obj, const char *name, int line, cv **out);
cllm_status chat_getitem(chat_rt *rt, cv *obj, cv *key, int line, cv **out);
cllm_status chat_filter(chat_rt *rt, const char *name, cv *val, const cv_args *a, cv **out);
cllm_status chat_test(chat_rt *rt, const char *name, cv *val, const cv_args *a, bool *out);
/* Bound method `name` of a str/dict/list value, or NULL when there is no such method. */
cv *chat_method(chat_rt *rt, cv *self, const char *name);
bool chat_has_filter(const char *name);
bool chat_has_test(const char *name);
void chat_install_globals(chat_rt *rt, cv *globals);
/* Iterate: list items of a list/tuple/str(chars)/dict(keys); undefined -> empty. */
cllm_status chat_iter(chat_rt *rt, cv *v, int line, cv ***items, size_t *n);
cllm_status chat_type_error(int line, const char *what, const cv *a, const cv *b);
/* Find keyword argument `name`, or positional `pos`, else NULL. */
cv *chat_arg(const cv_args *a, int pos, const char *name);

#endif
