/* tok_bpe.c - the BPE model: one pre-token (word) to ids, with HF's merge order (lowest rank
 * first, leftmost on ties), byte fallback, unk fusing, ignore_merges and a per-call word cache. */
#include "base/error.h"
#include "tok_internal.h"
#include <stdlib.h>
#include <string.h>

/* Words longer than this are not cached (they are rare and would bloat the cache). */
#define CACHE_MAX_WORD 64
#define CACHE_MAX_ENTRIES 65536

struct tok_bpe_cache {
    tok_strmap map; /* word -> entry index */
    struct {
        uint32_t off, n;
    } * ent;
    size_t n_ent, cap_ent;
    tok_ids ids;
};

cllm_status tok_bpe_cache_create(tok_bpe_cache **out) {
    *out = calloc(1, sizeof **out);
    return *out ? CLLM_OK : err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
}

void tok_bpe_cache_free(tok_bpe_cache *c) {
    if (!c) return;
    tok_strmap_free(&c->map);
    free(c->ent);
    tok_ids_free(&c->ids);
    free(c);
}

void tok_bpe_scratch_free(tok_bpe_scratch *sc) {
    free(sc->sym);
    free(sc->heap);
    tok_bpe_cache_free(sc->cache);
    memset(sc, 0, sizeof *sc);
}

static void cache_put(tok_bpe_cache *c, const char *w, size_t n, const int32_t *ids, size_t k) {
    if (n > CACHE_MAX_WORD || c->n_ent >= CACHE_MAX_ENTRIES) return;
    if (c->n_ent == c->cap_ent) {
        size_t cap = c->cap_ent ? c->cap_ent * 2 : 256;
        void *p = realloc(c->ent, cap * sizeof *c->ent);
        if (!p) return; /* the cache is an optimisation; failing to grow is not an error */
        c->ent = p;
        c->cap_ent = cap;
    }
    size_t off = c->ids.len;
    if (tok_ids_append(&c->ids, ids, k) != CLLM_OK) return;
    if (tok_strmap_put(&c->map, w, n, (int32_t)c->n_ent) != CLLM_OK) {
        c->ids.len = off;
        return;
    }
    c->ent[c->n_ent].off = (uint32_t)off;
    c->ent[c->n_ent].n = (uint32_t)k;
    c->n_ent++;
}

/* ---- symbols and the merge queue ---- */

static cllm_status sym_push(tok_bpe_scratch *sc, size_t *n, int32_t id, uint32_t len) {
    if (*n == sc->sym_cap) {
        size_t cap = sc->sym_cap ? sc->sym_cap * 2 : 64;
        struct tok_sym *s = realloc(sc->sym, cap * sizeof *s);
        if (!s) return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        sc->sym = s;
        sc->sym_cap = cap;
    }
    int32_t i = (int32_t)*n;
    sc->sym[i] = (struct tok_sym){id, i - 1, -1, len};
    if (i > 0) sc->sym[i - 1].next = i;
    (*n)++;
    return CLLM_OK;
}

static inline bool heap_less(const struct tok_heap_item *a, const struct tok_heap_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct tok_heap_item *h, size_t *n, struct tok_heap_item it) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static struct tok_heap_item heap_pop(struct tok_heap_item *h, size_t *n) {
    struct tok_heap_item top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* HF Word::merge_all. Every merge adds at most two queue entries and removes a symbol, so the
 * queue never holds more than 3x the initial symbol count. */
static cllm_status merge_all(const tokenizer *t, tok_bpe_scratch *sc, size_t n) {
    if (n < 2) return CLLM_OK;
    if (sc->heap_cap < 3 * n) {
        free(sc->heap);
        sc->heap = malloc(3 * n * sizeof *sc->heap);
        if (!sc->heap) {
            sc->heap_cap = 0;
            return err_set(CLLM_ERR_NOMEM, "tokenizer: out of memory");
        }
        sc->heap_cap = 3 * n;
    }
    struct tok_sym *s = sc->sym;
    struct tok_heap_item *h = sc->heap;
    size_t hn = 0;
    uint32_t rank;
    int32_t id;
    for (size_t i = 0; i + 1 < n; i++)
        if (tok_mergemap_get(&t->merges, s[i].id, s[i + 1].id, &rank, &id))
            heap_push(h, &hn, (struct tok_heap_item){rank, (uint32_t)i, id});
    while (hn) {
        struct tok_heap_item top = heap_pop(h, &hn);
        struct tok_sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        struct tok_sym *right = &s[cur->next];
        /* Stale entry: the pair changed since it was queued. */
        if (!tok_mergemap_get(&t->merges, cur->id, right->id, &rank, &id) || id != top.id) continue;
        cur->id = top.id;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0) s[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0 && tok_mergemap_get(&t->merges, s[cur->prev].id, cur->id, &rank, &id))
            heap_push(h, &hn, (struct tok_heap_item){rank, (uint32_t)cur->prev, id});
        if (cur->next >= 0 && tok_mergemap_get(&t->merges, cur->id, s[cur->next].id, &rank, &id))
            heap_push(h, &hn, (struct tok_heap_item){rank, top.pos, id});
    }
    return CLLM_OK;
}

static inline int32_t char_id(const tokenizer *t, const char *c, size_t k) {
    if (k <= 2) {
        uint32_t cp;
        tok_utf8_decode(c, &cp);
        return t->small_cp_id[cp];
    }
    return tok_strmap_get(&t->vocab, c, k);
}

/* HF BPE::merge_word's initial split: one symbol per character, bytes or unk for characters
 * missing from the vocabulary. */
static cllm_status initial_symbols(const tokenizer *t, tok_bpe_scratch *sc, const char *w,
                                   size_t len, size_t *n) {
    cllm_status st = CLLM_OK;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    *n = 0;
    for (size_t i = 0; i < len && st == CLLM_OK;) {
        size_t k = tok_utf8_seq((const uint8_t *)w + i, len - i);
        if (!k) k = 1; /* cannot happen for validated input; stay safe anyway */
        int32_t id = char_id(t, w + i, k);
        if (id >= 0) {
            if (unk >= 0) st = sym_push(sc, n, unk, unk_len), unk = -1;
            if (st == CLLM_OK) st = sym_push(sc, n, id, (uint32_t)k);
        } else {
            bool all_bytes = t->byte_fallback;
            for (size_t b = 0; b < k && all_bytes; b++)
                all_bytes = t->byte_ids[(uint8_t)w[i + b]] >= 0;
            if (all_bytes) {
                /* HF adds the byte tokens without flushing a pending unk first. */
                for (size_t b = 0; b < k && st == CLLM_OK; b++)
                    st = sym_push(sc, n, t->byte_ids[(uint8_t)w[i + b]], 1);
            } else if (t->unk_id >= 0) {
                if (unk >= 0 && t->fuse_unk) {
                    unk_len += (uint32_t)k;
                } else {
                    if (unk >= 0) st = sym_push(sc, n, unk, unk_len);
                    unk = t->unk_id;
                    unk_len = (uint32_t)k;
                }
            } /* no unk token: HF drops the character */
        }
        i += k;
    }
    if (st == CLLM_OK && unk >= 0) st = sym_push(sc, n, unk, unk_len);
    return st;
}

cllm_status tok_bpe_word(const tokenizer *t, tok_bpe_scratch *sc, const char *w, size_t len,
                         tok_ids *out) {
    if (len == 0) return CLLM_OK;
    if (t->ignore_merges) {
        int32_t id = tok_strmap_get(&t->vocab, w, len);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (sc->cache) {
        int32_t e = tok_strmap_get(&sc->cache->map, w, len);
        if (e >= 0)
            return tok_ids_append(out, sc->cache->ids.p + sc->cache->ent[e].off,
                                  sc->cache->ent[e].n);
    }
    size_t n;
    cllm_status st = initial_symbols(t, sc, w, len, &n);
    if (st == CLLM_OK) st = merge_all(t, sc, n);
    if (st != CLLM_OK) return st;
    size_t first = out->len;
    for (size_t i = 0; i < n && st == CLLM_OK; i++)
        if (sc->sym[i].len) st = tok_ids_push(out, sc->sym[i].id);
    if (st == CLLM_OK && sc->cache) cache_put(sc->cache, w, len, out->p + first, out->len - first);
    return st;
}
