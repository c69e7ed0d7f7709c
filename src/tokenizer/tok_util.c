/* tok_util.c - the tokenizer's small containers (growable buffers, string and merge hash maps)
 * and UTF-8 helpers. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---- */

static cllm_status ids_reserve(tok_ids *v, size_t extra) {
    if (v->cap - v->len >= extra) return CLLM_OK;
    size_t cap = v->cap ? v->cap : 16;
    while (cap - v->len < extra)
        cap *= 2;
    int32_t *p = realloc(v->p, cap * sizeof *p);
    if (!p) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    v->p = p;
    v->cap = cap;
    return CLLM_OK;
}

cllm_status tok_ids_push(tok_ids *v, int32_t id) {
    if (v->len == v->cap) {
        cllm_status st = ids_reserve(v, 1);
        if (st != CLLM_OK) return st;
    }
    v->p[v->len++] = id;
    return CLLM_OK;
}

cllm_status tok_ids_append(tok_ids *v, const int32_t *ids, size_t n) {
    cllm_status st = ids_reserve(v, n);
    if (st != CLLM_OK) return st;
    if (n) memcpy(v->p + v->len, ids, n * sizeof *ids);
    v->len += n;
    return CLLM_OK;
}

void tok_ids_free(tok_ids *v) {
    free(v->p);
    v->p = NULL;
    v->len = v->cap = 0;
}

/* ---- word lists (token strings in decoding) ---- */

cllm_status tok_words_add(tok_words *ws, const char *s, size_t n, bool at_start) {
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 64;
        struct tok_word *w = realloc(ws->w, cap * sizeof *w);
        if (!w) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        ws->w = w;
        ws->cap = cap;
    }
    size_t off = ws->text.len;
    cllm_status st = sb_append(&ws->text, s, n);
    if (st != CLLM_OK) return st;
    ws->w[ws->n++] = (struct tok_word){off, n, at_start};
    return CLLM_OK;
}

void tok_words_clear(tok_words *ws) {
    ws->n = 0;
    sb_clear(&ws->text);
}

void tok_words_free(tok_words *ws) {
    sb_free(&ws->text);
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}

/* ---- string map ---- */

/* FNV-1a over 8-byte words: fast for the short keys (words, pieces) we hash. */
uint64_t tok_hash(const void *s, size_t n) {
    const uint8_t *p = s;
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static cllm_status strmap_grow(tok_strmap *m) {
    size_t nslots = m->mask ? (m->mask + 1) * 2 : 64;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->e[i].hash & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = nslots - 1;
    return CLLM_OK;
}

cllm_status tok_strmap_put(tok_strmap *m, const char *s, size_t n, int32_t val) {
    if (n > UINT32_MAX || m->keys.len + n > UINT32_MAX)
        return err_set(CLLM_ERR_LIMIT, "tokenizer: string table too large");
    if ((m->n + 1) * 4 > (m->mask + 1) * 3 || !m->slots) {
        cllm_status st = strmap_grow(m);
        if (st != CLLM_OK) return st;
    }
    uint64_t h = tok_hash(s, n);
    size_t j = h & m->mask;
    while (m->slots[j]) {
        struct tok_strmap_entry *e = &m->e[m->slots[j] - 1];
        if (e->hash == h && e->len == n && memcmp(m->keys.p + e->off, s, n) == 0) {
            e->val = val;
            return CLLM_OK;
        }
        j = (j + 1) & m->mask;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct tok_strmap_entry *e = realloc(m->e, cap * sizeof *e);
        if (!e) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        m->e = e;
        m->cap = cap;
    }
    size_t off = m->keys.len;
    cllm_status st = sb_append(&m->keys, s, n);
    if (st != CLLM_OK) return st;
    m->e[m->n] = (struct tok_strmap_entry){h, (uint32_t)off, (uint32_t)n, val};
    m->slots[j] = (uint32_t)++m->n;
    return CLLM_OK;
}

int32_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n) {
    if (!m->slots) return -1;
    uint64_t h = tok_hash(s, n);
    size_t j = h & m->mask;
    while (m->slots[j]) {
        const struct tok_strmap_entry *e = &m->e[m->slots[j] - 1];
        if (e->hash == h && e->len == n && memcmp(m->keys.p + e->off, s, n) == 0) return e->val;
        j = (j + 1) & m->mask;
    }
    return -1;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slots);
    free(m->e);
    sb_free(&m->keys);
    memset(m, 0, sizeof *m);
}

/* ---- merge map ---- */

static inline size_t merge_slot(uint64_t key) {
    key ^= key >> 31;
    key *= 0x7fb5d329728ea185ull;
    key ^= key >> 27;
    return (size_t)key;
}

cllm_status tok_mergemap_init(tok_mergemap *m, size_t expected) {
    size_t n = 64;
    while (n < expected * 2)
        n *= 2;
    m->s = calloc(n, sizeof *m->s);
    if (!m->s) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory for %zu merges", expected);
    m->mask = n - 1;
    m->n = 0;
    return CLLM_OK;
}

void tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t j = merge_slot(key) & m->mask;
    while (m->s[j].key && m->s[j].key != key)
        j = (j + 1) & m->mask;
    if (!m->s[j].key) m->n++;
    m->s[j] = (struct tok_merge_slot){key, rank, id};
}

bool tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    if (!m->s) return false;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t j = merge_slot(key) & m->mask;
    while (m->s[j].key) {
        if (m->s[j].key == key) {
            *rank = m->s[j].rank;
            *id = m->s[j].id;
            return true;
        }
        j = (j + 1) & m->mask;
    }
    return false;
}

void tok_mergemap_free(tok_mergemap *m) {
    free(m->s);
    memset(m, 0, sizeof *m);
}

/* ---- UTF-8 ---- */

size_t tok_utf8_seq(const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return need;
}

bool tok_utf8_valid(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = tok_utf8_seq(p + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

size_t tok_utf8_decode(const char *s, uint32_t *cp) {
    const uint8_t *p = (const uint8_t *)s;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] < 0xE0) {
        *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (p[0] < 0xF0) {
        *cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
          ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return 4;
}

size_t tok_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* An invalid sequence is replaced as a whole "maximal subpart": the lead byte plus the
 * continuation bytes that were still acceptable, which is what from_utf8_lossy does. */
cllm_status tok_utf8_lossy_append(strbuf *out, const uint8_t *s, size_t n) {
    static const char repl[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, run = 0;
    cllm_status st;
    while (i < n) {
        size_t k = s[i] < 0x80 ? 1 : tok_utf8_seq(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        if ((st = sb_append(out, s + run, i - run)) != CLLM_OK) return st;
        uint8_t c = s[i];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2, j = 1;
        if (c >= 0xC2 && c <= 0xF4) {
            uint8_t lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
            if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
                j = 2;
                while (j < need && i + j < n && (s[i + j] & 0xC0) == 0x80)
                    j++;
            }
        }
        if ((st = sb_append(out, repl, 3)) != CLLM_OK) return st;
        i += j;
        run = i;
    }
    return sb_append(out, s + run, n - run);
}

bool tok_is_white_space(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    if (cp < 0x85) return false;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}
