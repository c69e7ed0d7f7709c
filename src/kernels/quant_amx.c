/* quant_amx.c - the AMX family's repacked weight layout (see quant_amx.h) and the registry that
 * maps a model's weight pointers to their repacked copies. Plain C: runs on any CPU. */
#include "kernels/quant_amx.h"

#include "base/error.h"
#include "base/half.h"
#include "kernels/quant_blocks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GROUP 16 /* weight rows per tile group */
#define BL 32    /* values per block */

int quant_amx_type(dtype wt) {
    return wt == DTYPE_Q8_0 || wt == DTYPE_Q4_0;
}

int amx_packable(dtype wt) {
    return quant_amx_type(wt) || wt == DTYPE_BF16;
}

static size_t record_bytes(dtype wt) {
    return wt == DTYPE_BF16 ? 1024 : wt == DTYPE_Q4_0 ? 256 + 64 : 512 + 64;
}

/* K chunks of a row: blocks of 32 (bf16: 32 values, the last one zero padded). */
static int chunks(dtype wt, int K) {
    return wt == DTYPE_BF16 ? (K + BL - 1) / BL : K / BL;
}

size_t quant_amx_packed_bytes(dtype wt, int N, int K) {
    size_t groups = ((size_t)N + GROUP - 1) / GROUP;
    return groups * (size_t)chunks(wt, K) * record_bytes(wt);
}

/* bf16 group g, chunk c: tile word [r * 32 + j * 2 + i] = W[16 g + j][32 c + 2 r + i], i.e. a
 * 16 x 16 transpose of 32-bit pairs (full chunks copy pairs; the last chunk of an odd K by halves).
 */
static void pack_bf16(const uint16_t *w, int N, int K, uint8_t *dst, int g0, int g1) {
    const int nc = chunks(DTYPE_BF16, K);
    for (int g = g0; g < g1; g++)
        for (int c = 0; c < nc; c++) {
            uint16_t *t = (uint16_t *)(dst + ((size_t)g * nc + c) * 1024);
            memset(t, 0, 1024);
            const int kn = K - c * BL < BL ? K - c * BL : BL;
            for (int j = 0; j < GROUP && g * GROUP + j < N; j++) {
                const uint16_t *row = w + (size_t)(g * GROUP + j) * K + (size_t)c * BL;
                int r = 0;
                for (; 2 * r + 1 < kn; r++)
                    memcpy(t + r * 32 + j * 2, row + 2 * r, 4);
                if (2 * r < kn) t[r * 32 + j * 2] = row[2 * r];
            }
        }
}

/* The 32 signed levels and the scale of block b of a row. */
static float block_levels(dtype wt, const uint8_t *row, int b, int8_t *q) {
    if (wt == DTYPE_Q8_0) {
        const blk_q8_0 *blk = (const blk_q8_0 *)row + b;
        memcpy(q, blk->qs, BL);
        return f16_to_f32(blk->d);
    }
    const blk_q4_0 *blk = (const blk_q4_0 *)row + b;
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((blk->qs[j] & 15) - 8);
        q[j + 16] = (int8_t)((blk->qs[j] >> 4) - 8);
    }
    return f16_to_f32(blk->d);
}

/* Groups [g0, g1) of the repacked copy. */
static void pack_groups(dtype wt, const void *w, int N, int K, uint8_t *dst, int g0, int g1) {
    if (wt == DTYPE_BF16) {
        pack_bf16(w, N, K, dst, g0, g1);
        return;
    }
    const int nb = K / BL;
    const size_t rec = record_bytes(wt), row_bytes = dtype_row_bytes(wt, K);
    int8_t tile[512] __attribute__((aligned(64)));
    int8_t q[BL];
    for (int g = g0; g < g1; g++)
        for (int b = 0; b < nb; b++) {
            uint8_t *r = dst + ((size_t)g * nb + b) * rec;
            float scale[GROUP] = {0};
            memset(tile, 0, sizeof tile);
            for (int j = 0; j < GROUP && g * GROUP + j < N; j++) {
                scale[j] = block_levels(
                    wt, (const uint8_t *)w + (size_t)(g * GROUP + j) * row_bytes, b, q);
                for (int k = 0; k < BL; k++)
                    tile[(k / 4) * 64 + j * 4 + k % 4] = q[k];
            }
            if (wt == DTYPE_Q4_0) {
                for (int t = 0; t < 256; t++)
                    r[t] = (uint8_t)(((tile[t] + 8) & 15) | (((tile[t + 256] + 8) & 15) << 4));
                memcpy(r + 256, scale, sizeof scale);
            } else {
                memcpy(r, tile, 512);
                memcpy(r + 512, scale, sizeof scale);
            }
        }
}

void quant_amx_pack(dtype wt, const void *w, int N, int K, uint8_t *dst) {
    pack_groups(wt, w, N, K, dst, 0, (N + GROUP - 1) / GROUP);
}

/* Pack groups [g0, g1) in slices of about 1 MiB of source rows; with release, the whole pages of
 * source rows already packed are given back to the OS as it goes (the peak resident set stays at
 * the copy plus a slice per thread instead of copy plus source). Pages shared with rows outside
 * [g0, g1) are left alone (another thread may still read them). */
static void pack_releasing(dtype wt, const void *w, int N, int K, uint8_t *dst, int g0, int g1,
                           int release) {
    const size_t row_bytes = dtype_row_bytes(wt, K), group_src = (size_t)GROUP * row_bytes;
    int step = (int)(((size_t)1 << 20) / group_src);
    if (step < 1) step = 1;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t done = ((uintptr_t)w + (size_t)g0 * group_src + page - 1) & ~(page - 1);
    for (int g = g0; g < g1; g += step) {
        int ge = g + step < g1 ? g + step : g1;
        pack_groups(wt, w, N, K, dst, g, ge);
        if (!release) continue;
        size_t rows = (size_t)ge * GROUP < (size_t)N ? (size_t)ge * GROUP : (size_t)N;
        uintptr_t end = ((uintptr_t)w + rows * row_bytes) & ~(page - 1);
        if (end > done) {
            madvise((void *)done, end - done, MADV_DONTNEED);
            done = end;
        }
    }
}

typedef struct {
    dtype wt;
    const void *w;
    int N, K, release;
    uint8_t *dst;
} pack_job;

static void pack_task(void *ctx, int ith, int nth) {
    const pack_job *j = ctx;
    long lo, hi;
    tp_split((j->N + GROUP - 1) / GROUP, 1, ith, nth, &lo, &hi);
    if (lo < hi) pack_releasing(j->wt, j->w, j->N, j->K, j->dst, (int)lo, (int)hi, j->release);
}

void quant_amx_row_to_f32(dtype wt, const uint8_t *packed, int K, int n, float *dst) {
    const int g = n / GROUP, j = n % GROUP;
    if (wt == DTYPE_BF16) {
        const int nc = chunks(wt, K);
        for (int k = 0; k < K; k++) {
            const uint16_t *t = (const uint16_t *)(packed + ((size_t)g * nc + k / BL) * 1024);
            dst[k] = bf16_to_f32(t[((k % BL) / 2) * 32 + j * 2 + k % 2]);
        }
        return;
    }
    const int nb = K / BL;
    const size_t rec = record_bytes(wt), soff = wt == DTYPE_Q4_0 ? 256 : 512;
    for (int b = 0; b < nb; b++) {
        const uint8_t *r = packed + ((size_t)g * nb + b) * rec;
        float d;
        memcpy(&d, r + soff + 4 * (size_t)j, 4);
        for (int k = 0; k < BL; k++) {
            int t = (k / 4) * 64 + j * 4 + k % 4, q;
            if (wt == DTYPE_Q4_0)
                q = (t < 256 ? r[t] & 15 : r[t - 256] >> 4) - 8;
            else
                q = (int8_t)r[t];
            dst[b * BL + k] = d * (float)q; /* as the file's block dequantizes: d * level */
        }
    }
}

/* ------------------------------------------------------------------ registry */

typedef struct {
    const void *src;
    uint8_t *packed;
    dtype wt;
    int N, K;
} entry;

static entry *g_tab;
static size_t g_cap, g_len; /* open addressing, g_cap a power of two, load <= 1/2 */
static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;

static size_t slot_of(const void *p, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static entry *find(const void *p) {
    if (!g_cap) return NULL;
    for (size_t i = slot_of(p, g_cap);; i = (i + 1) & (g_cap - 1)) {
        if (g_tab[i].src == p) return &g_tab[i];
        if (!g_tab[i].src) return NULL;
    }
}

static int grow(void) {
    size_t cap = g_cap ? g_cap * 2 : 256;
    entry *t = calloc(cap, sizeof *t);
    if (!t) return 0;
    for (size_t i = 0; i < g_cap; i++)
        if (g_tab[i].src) {
            size_t j = slot_of(g_tab[i].src, cap);
            while (t[j].src)
                j = (j + 1) & (cap - 1);
            t[j] = g_tab[i];
        }
    free(g_tab);
    g_tab = t;
    g_cap = cap;
    return 1;
}

cllm_status quant_amx_register(const void *w, dtype wt, int N, int K) {
    return quant_amx_register_releasing(w, wt, N, K, 0, NULL);
}

cllm_status quant_amx_register_releasing(const void *w, dtype wt, int N, int K, int release,
                                         threadpool *tp) {
    if (!amx_packable(wt) || N <= 0 || K <= 0 || (wt != DTYPE_BF16 && K % BL))
        return err_set(CLLM_ERR_INVALID_ARG, "AMX repack: unsupported %s matrix %dx%d",
                       dtype_name(wt), N, K);
    pthread_rwlock_rdlock(&g_lock);
    entry *old = find(w);
    int have = old && old->wt == wt && old->N == N && old->K == K;
    pthread_rwlock_unlock(&g_lock);
    if (have) { /* packed earlier (e.g. by the calibration): give the source pages back now */
        if (release) {
            const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
            uintptr_t lo = ((uintptr_t)w + page - 1) & ~(page - 1);
            uintptr_t hi = ((uintptr_t)w + (size_t)N * dtype_row_bytes(wt, K)) & ~(page - 1);
            if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
        return CLLM_OK;
    }
    if (old) quant_amx_unregister(w); /* the memory now holds another matrix */
    size_t bytes = quant_amx_packed_bytes(wt, N, K);
    uint8_t *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) return err_set(CLLM_ERR_NOMEM, "out of memory repacking a %dx%d matrix", N, K);
    pack_job job = {.wt = wt, .w = w, .N = N, .K = K, .release = release, .dst = p};
    tp_run(tp, pack_task, &job);
    pthread_rwlock_wrlock(&g_lock);
    if (find(w) || ((g_len + 1) * 2 > g_cap && !grow())) {
        int dup = find(w) != NULL;
        pthread_rwlock_unlock(&g_lock);
        free(p);
        return dup ? CLLM_OK : err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    size_t i = slot_of(w, g_cap);
    while (g_tab[i].src)
        i = (i + 1) & (g_cap - 1);
    g_tab[i] = (entry){.src = w, .packed = p, .wt = wt, .N = N, .K = K};
    g_len++;
    pthread_rwlock_unlock(&g_lock);
    return CLLM_OK;
}

const uint8_t *quant_amx_lookup(const void *w, dtype wt, int N, int K) {
    pthread_rwlock_rdlock(&g_lock);
    entry *e = find(w);
    const uint8_t *p = e && e->wt == wt && e->N == N && e->K == K ? e->packed : NULL;
    pthread_rwlock_unlock(&g_lock);
    return p;
}

void quant_amx_unregister(const void *w) {
    pthread_rwlock_wrlock(&g_lock);
    entry *e = find(w);
    if (e) {
        free(e->packed);
        /* re-insert the rest of the cluster so that probing still finds every entry */
        size_t i = (size_t)(e - g_tab);
        g_tab[i] = (entry){0};
        g_len--;
        for (size_t j = (i + 1) & (g_cap - 1); g_tab[j].src; j = (j + 1) & (g_cap - 1)) {
            entry moved = g_tab[j];
            g_tab[j] = (entry){0};
            size_t k = slot_of(moved.src, g_cap);
            while (g_tab[k].src)
                k = (k + 1) & (g_cap - 1);
            g_tab[k] = moved;
        }
    }
    pthread_rwlock_unlock(&g_lock);
}
