/* chat_lexer.c - splits template source into data and tag tokens, applying jinja2's whitespace
 * rules exactly as Hugging Face configures them (trim_blocks, lstrip_blocks, "-" / "+" markers). */
#include "chat/chat_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    chat_arena *a;
    const char *s;
    size_t n, pos;
    int line;
    chat_token *toks;
    size_t ntoks, cap;
} lexer;

static bool push(lexer *L, chat_token t) {
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        chat_token *nt = chat_alloc(L->a, cap * sizeof(chat_token));
        if (!nt) return false;
        if (L->ntoks) memcpy(nt, L->toks, L->ntoks * sizeof(chat_token));
        L->toks = nt;
        L->cap = cap;
    }
    L->toks[L->ntoks++] = t;
    return true;
}

static int count_nl(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '\n';
    return c;
}

/* Length of the Python-whitespace run that ends at s+n (scanning backwards over UTF-8). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xc0) == 0x80)
            st--;
        size_t i = st;
        uint32_t c = utf8_next(s, end, &i);
        if (i != end || !py_isspace(c)) break;
        end = st;
    }
    return end;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n) {
        size_t j = i;
        uint32_t c = utf8_next(s, n, &j);
        if (!py_isspace(c)) break;
        i = j;
    }
    return i;
}

static bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static void put_utf8(strbuf *b, uint32_t c) {
    char u[4];
    if (c < 0x80) {
        sb_putc(b, (char)c);
    } else if (c < 0x800) {
        u[0] = (char)(0xc0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3f));
        sb_append(b, u, 2);
    } else if (c < 0x10000) {
        u[0] = (char)(0xe0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        u[2] = (char)(0x80 | (c & 0x3f));
        sb_append(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        u[3] = (char)(0x80 | (c & 0x3f));
        sb_append(b, u, 4);
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode a string literal body the way Python's "unicode-escape" codec does. */
static cllm_status lex_string(lexer *L, chat_token *t) {
    char q = L->s[L->pos];
    size_t i = L->pos + 1;
    int line = L->line;
    strbuf b = CHAT_BUF_INIT;
    for (;;) {
        if (i >= L->n) {
            sb_free(&b);
            return err_set(CLLM_ERR_FORMAT, "chat template line %d: unterminated string literal",
                           line);
        }
        char c = L->s[i];
        if (c == q) break;
        if (c == '\n') L->line++;
        if (c != '\\' || i + 1 >= L->n) {
            sb_putc(&b, c);
            i++;
            continue;
        }
        char e = L->s[i + 1];
        i += 2;
        const char *simple = strchr("\\'\"abfnrtv", e);
        if (e && simple) {
            static const char map[] = "\\'\"\a\b\f\n\r\t\v";
            sb_putc(&b, map[simple - "\\'\"abfnrtv"]);
        } else if (e == '\n') {
            L->line++; /* backslash-newline: line continuation, produces nothing */
        } else if (e >= '0' && e <= '7') {
            uint32_t v = (uint32_t)(e - '0');
            for (int k = 0; k < 2 && i < L->n && L->s[i] >= '0' && L->s[i] <= '7'; k++)
                v = v * 8 + (uint32_t)(L->s[i++] - '0');
            put_utf8(&b, v);
        } else if (e == 'x' || e == 'u' || e == 'U') {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int k = 0; k < nd; k++) {
                int h = i < L->n ? hexval(L->s[i]) : -1;
                if (h < 0) {
                    sb_free(&b);
                    return err_set(CLLM_ERR_FORMAT,
                                   "chat template line %d: truncated \\%c escape in string", line,
                                   e);
                }
                v = v * 16 + (uint32_t)h;
                i++;
            }
            if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
                sb_free(&b);
                return err_set(CLLM_ERR_UNSUPPORTED,
                               "chat template line %d: string escape for code point U+%X is not "
                               "supported",
                               line, v);
            }
            put_utf8(&b, v);
        } else if (e == 'N') {
            sb_free(&b);
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: \\N{...} string escapes are not supported",
                           line);
        } else {
            sb_putc(&b, '\\'); /* unknown escapes are kept verbatim, like Python */
            i--;
        }
    }
    if (b.err) {
        sb_free(&b);
        return CLLM_ERR_LIMIT;
    }
    t->type = T_STRING;
    t->n = b.len;
    t->s = chat_strdup(L->a, b.p ? b.p : "", b.len);
    sb_free(&b);
    if (!t->s) return CLLM_ERR_NOMEM;
    L->pos = i + 1;
    return CLLM_OK;
}

/* Numbers: decimal ints and floats with optional '_' separators (jinja2's integer/float rules). */
static cllm_status lex_number(lexer *L, chat_token *t) {
    size_t i = L->pos;
    if (L->s[i] == '0' && i + 1 < L->n && strchr("xXoObB", L->s[i + 1]))
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "chat template line %d: hex/octal/binary integer literals are not supported",
                       L->line);
    char buf[128];
    size_t k = 0;
    bool is_float = false;
#define TAKE_DIGITS()                                                                              \
    while (i < L->n &&                                                                             \
           (is_digit(L->s[i]) || (L->s[i] == '_' && i + 1 < L->n && is_digit(L->s[i + 1])))) {     \
        if (L->s[i] != '_' && k < sizeof buf - 1) buf[k++] = L->s[i];                              \
        i++;                                                                                       \
    }
    TAKE_DIGITS();
    if (i + 1 < L->n && L->s[i] == '.' && is_digit(L->s[i + 1])) {
        is_float = true;
        buf[k++] = L->s[i++];
        TAKE_DIGITS();
    }
    if (i < L->n && (L->s[i] == 'e' || L->s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->n && (L->s[j] == '+' || L->s[j] == '-')) j++;
        if (j < L->n && is_digit(L->s[j])) {
            is_float = true;
            for (size_t m = i; m < j && k < sizeof buf - 1; m++)
                buf[k++] = L->s[m];
            i = j;
            TAKE_DIGITS();
        }
    }
#undef TAKE_DIGITS
    buf[k] = 0;
    if (k >= sizeof buf - 1)
        return err_set(CLLM_ERR_UNSUPPORTED, "chat template line %d: number literal too long",
                       L->line);
    errno = 0;
    if (is_float) {
        t->type = T_FLOAT;
        t->f = strtod(buf, NULL);
    } else {
        t->type = T_INT;
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return err_set(CLLM_ERR_UNSUPPORTED,
                           "chat template line %d: integer literal %s does not fit in 64 bits",
                           L->line, buf);
        t->i = v;
    }
    L->pos = i;
    return CLLM_OK;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", ">=", "<="};

/* Lex the inside of a {{ }} or {% %} tag up to and including its end marker. */
static cllm_status lex_tag(lexer *L, bool block) {
    int depth = 0;
    char stack[CHAT_MAX_DEPTH];
    for (;;) {
        size_t j = skip_ws(L->s, L->n, L->pos);
        L->line += count_nl(L->s + L->pos, j - L->pos);
        L->pos = j;
        if (L->pos >= L->n)
            return err_set(CLLM_ERR_FORMAT,
                           "chat template line %d: unexpected end of template "
                           "inside a tag (missing '%s')",
                           L->line, block ? "%}" : "}}");
        const char *p = L->s + L->pos;
        size_t left = L->n - L->pos;
        const char *end = block ? "%}" : "}}";
        if (depth == 0) {
            bool minus = left >= 3 && p[0] == '-' && !memcmp(p + 1, end, 2);
            bool plus = block && left >= 3 && p[0] == '+' && !memcmp(p + 1, end, 2);
            bool plain = left >= 2 && !memcmp(p, end, 2);
            if (minus || plus || plain) {
                L->pos += minus || plus ? 3 : 2;
                if (minus) {
                    size_t e = skip_ws(L->s, L->n, L->pos);
                    L->line += count_nl(L->s + L->pos, e - L->pos);
                    L->pos = e;
                } else if (plain && block && L->pos < L->n && L->s[L->pos] == '\n') {
                    L->pos++; /* trim_blocks */
                    L->line++;
                }
                chat_token t = {.type = block ? T_BLOCK_END : T_VAR_END, .line = L->line};
                return push(L, t) ? CLLM_OK : CLLM_ERR_NOMEM;
            }
        }
        chat_token t = {.line = L->line};
        cllm_status st;
        if (is_digit(p[0])) {
            if ((st = lex_number(L, &t))) return st;
        } else if (is_name_start(p[0])) {
            size_t k = 1;
            while (k < left && (is_name_start(p[k]) || is_digit(p[k])))
                k++;
            t.type = T_NAME;
            t.s = chat_strdup(L->a, p, k);
            t.n = k;
            if (!t.s) return CLLM_ERR_NOMEM;
            L->pos += k;
        } else if (p[0] == '\'' || p[0] == '"') {
            if ((st = lex_string(L, &t))) return st;
        } else {
            size_t k = 0;
            for (size_t o = 0; o < sizeof OPS2 / sizeof *OPS2; o++)
                if (left >= 2 && !memcmp(p, OPS2[o], 2)) k = 2;
            if (!k && strchr("+-/*%~[](){}=.:|,;<>", p[0]) && p[0]) k = 1;
            if (!k)
                return err_set(CLLM_ERR_FORMAT, "chat template line %d: unexpected char '%c'",
                               L->line, p[0]);
            if (k == 1 && strchr("([{", p[0])) {
                if (depth >= CHAT_MAX_DEPTH)
                    return err_set(CLLM_ERR_LIMIT,
                                   "chat template line %d: brackets nested too "
                                   "deeply",
                                   L->line);
                stack[depth++] = p[0] == '(' ? ')' : p[0] == '[' ? ']' : '}';
            } else if (k == 1 && strchr(")]}", p[0])) {
                if (!depth || stack[depth - 1] != p[0])
                    return err_set(CLLM_ERR_FORMAT, "chat template line %d: unexpected '%c'",
                                   L->line, p[0]);
                depth--;
            }
            t.type = T_OP;
            t.s = chat_strdup(L->a, p, k);
            t.n = k;
            if (!t.s) return CLLM_ERR_NOMEM;
            L->pos += k;
        }
        if (!push(L, t)) return CLLM_ERR_NOMEM;
    }
}

cllm_status chat_lex(chat_arena *a, const char *src, size_t len, chat_token **toks, size_t *ntoks) {
    /* jinja2 normalizes \r\n and \r to \n and drops one trailing newline. */
    char *s = chat_alloc(a, len + 1);
    if (!s) return CLLM_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    lexer L = {.a = a, .s = s, .n = n, .line = 1};
    bool line_starting = true;
    while (L.pos < n) {
        size_t t = L.pos;
        char kind = 0;
        for (; t + 1 < n; t++)
            if (s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#')) {
                kind = s[t + 1];
                break;
            }
        if (!kind) t = n;
        size_t text_n = t - L.pos;
        const char *text = s + L.pos;
        char sign = kind && t + 2 < n && (s[t + 2] == '-' || s[t + 2] == '+') ? s[t + 2] : 0;
        if (kind && sign == '-') {
            text_n = rstrip_len(text, text_n);
        } else if (kind && sign != '+' && kind != '{') {
            size_t l_pos = 0;
            for (size_t k = text_n; k > 0; k--)
                if (text[k - 1] == '\n') {
                    l_pos = k;
                    break;
                }
            if ((l_pos > 0 || line_starting) && l_pos < text_n &&
                skip_ws(text, text_n, l_pos) == text_n)
                text_n = l_pos;
        }
        if (text_n) {
            chat_token d = {.type = T_DATA, .line = L.line, .n = text_n};
            d.s = chat_strdup(a, text, text_n);
            if (!d.s || !push(&L, d)) return CLLM_ERR_NOMEM;
        }
        L.line += count_nl(s + L.pos, t - L.pos);
        if (!kind) break;
        L.pos = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *e = NULL;
            for (size_t k = L.pos; k + 1 < n; k++)
                if (s[k] == '#' && s[k + 1] == '}') {
                    e = s + k;
                    break;
                }
            if (!e)
                return err_set(CLLM_ERR_FORMAT,
                               "chat template line %d: missing end of comment "
                               "tag",
                               L.line);
            size_t ep = (size_t)(e - s);
            char esign = ep > L.pos && (s[ep - 1] == '-' || s[ep - 1] == '+') ? s[ep - 1] : 0;
            L.line += count_nl(s + L.pos, ep + 2 - L.pos);
            L.pos = ep + 2;
            if (esign == '-') {
                size_t w = skip_ws(s, n, L.pos);
                L.line += count_nl(s + L.pos, w - L.pos);
                L.pos = w;
            } else if (!esign && L.pos < n && s[L.pos] == '\n') {
                L.pos++;
                L.line++;
            }
        } else {
            if (kind == '%') {
                size_t k = skip_ws(s, n, L.pos);
                if (k + 3 <= n && !memcmp(s + k, "raw", 3) &&
                    (k + 3 == n || !(is_name_start(s[k + 3]) || is_digit(s[k + 3]))))
                    return err_set(CLLM_ERR_UNSUPPORTED,
                                   "chat template line %d: {%% raw %%} blocks are not supported",
                                   L.line);
            }
            chat_token b = {.type = kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, .line = L.line};
            if (!push(&L, b)) return CLLM_ERR_NOMEM;
            cllm_status st = lex_tag(&L, kind == '%');
            if (st) return st;
        }
        line_starting = L.pos > 0 && s[L.pos - 1] == '\n';
    }
    chat_token e = {.type = T_EOF, .line = L.line};
    if (!push(&L, e)) return CLLM_ERR_NOMEM;
    *toks = L.toks;
    *ntoks = L.ntoks;
    return CLLM_OK;
}
