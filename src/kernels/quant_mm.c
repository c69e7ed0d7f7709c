/* quant_mm.c - matmul over quantized weights: dispatch (threads over N), the x quantization (scalar
 * definition; the SIMD versions produce the same bytes), and the scalar path, which is also the
 * reference (kern_matmul_ref).
 *
 * Per output y[m][n] the scalar order is: for each block in order, the exact integer dot product
 * of the weight levels with x's quantized values (K-quants: each sub-block's integer sum times
 * its integer scale, summed exactly), then acc += float scale products; bias last. The SIMD
 * paths (quant_mm_avx2.c, quant_mm_avx512.c) compute the same exact integers per lane and differ
 * only in how the float terms are grouped. */
#include "base/cpu.h"
#include "base/half.h"
#include "kernels/quant_amx.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_impl.h"
#include "kernels/tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t up64(size_t v) {
    return (v + 63) & ~(size_t)63;
}

quant_mm_layout quant_mm_layout_of(dtype wt, int K) {
    quant_mm_layout l;
    int kq = wt >= DTYPE_Q4_K;
    l.bl = kq ? QK_K : QK;
    l.nb = K / l.bl;
    l.nbp = kq ? l.nb : (l.nb + 1) & ~1;
    size_t qs = (size_t)l.nbp * l.bl, d = up64((size_t)l.nbp * 4);
    size_t aux = up64(kq ? (size_t)l.nbp * 32 : (size_t)l.nbp * 4);
    size_t corr = quant_mm_corr_mult(wt) ? (size_t)l.nbp * 32 : 0;
    l.off_d = qs;
    l.off_aux = qs + d;
    l.off_corr = qs + d + aux;
    l.row_bytes = up64(qs + d + aux + corr);
    return l;
}

int quant_mm_corr_mult(dtype wt) {
    return wt == DTYPE_Q8_0 ? 128 : wt == DTYPE_Q4_0 ? 8 : wt == DTYPE_Q5_0 ? 16 : 0;
}

int quant_mm_simd_type(dtype wt) {
    return dtype_is_quant(wt) && wt != DTYPE_Q8_K;
}

/* The largest layout of all quantized types (Q8_0's, with its correction lanes, or the
 * K-quants'), so that one buffer serves a model that mixes types (Q4_K_M files hold Q4_K, Q6_K
 * and often Q8_0 / Q5_0 tensors). */
size_t quant_mm_work_size(int M, int K, dtype wt) {
    if (M <= 0 || K <= 0) return 0;
    size_t a = quant_mm_layout_of(DTYPE_Q8_0, K).row_bytes,
           b = quant_mm_layout_of(DTYPE_Q4_K, K).row_bytes;
    (void)wt;
    return (size_t)M * (a > b ? a : b) + 64;
}

/* ------------------------------------------------------------------ x quantization */

void quant_mm_zero_block(const quant_mm_layout *l, uint8_t *row, int b, int corr) {
    memset(row + (size_t)b * l->bl, 0, (size_t)l->bl);
    ((float *)(row + l->off_d))[b] = 0.0f;
    ((float *)(row + l->off_aux))[b] = 0.0f;
    if (corr) memset(row + l->off_corr + (size_t)b * 32, 0, 32);
}

void quant_mm_prep_rows(const quant_mm_args *a, const float *x, int ldx, int m0, int m1) {
    const quant_mm_layout *l = &a->lay;
    const int c = quant_mm_corr_mult(a->wt), kq = l->bl == QK_K;
    for (int m = m0; m < m1; m++) {
        const float *xr = x + (size_t)m * ldx;
        uint8_t *row = (uint8_t *)a->xq + (size_t)m * l->row_bytes;
        int8_t *qs = (int8_t *)row;
        float *d = (float *)(row + l->off_d);
        for (int b = 0; b < l->nbp; b++) {
            int8_t *q = qs + (size_t)b * l->bl;
            const float *xb = xr + (size_t)b * l->bl;
            float amax = 0.0f;
            if (b < l->nb)
                for (int j = 0; j < l->bl; j++) {
                    const float v = fabsf(xb[j]);
                    amax = v > amax ? v : amax;
                }
            const float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
            d[b] = db;
            for (int j = 0; j < l->bl; j++)
                q[j] = (int8_t)(b < l->nb ? quant_nearest_int(xb[j] * id) : 0);
            if (kq) {
                int16_t *bs = (int16_t *)(row + l->off_aux) + (size_t)b * 16;
                for (int g = 0; g < 16; g++) {
                    int s = 0;
                    for (int j = 0; j < 16; j++)
                        s += q[16 * g + j];
                    bs[g] = (int16_t)s;
                }
                continue;
            }
            int s = 0;
            for (int j = 0; j < QK; j++)
                s += q[j];
            ((float *)(row + l->off_aux))[b] = db * (float)s * 0.125f;
            if (c) {
                int32_t *cr = (int32_t *)(row + l->off_corr) + (size_t)b * 8;
                for (int g = 0; g < 8; g++)
                    cr[g] = -c * (q[4 * g] + q[4 * g + 1] + q[4 * g + 2] + q[4 * g + 3]);
            }
        }
    }
}

/* ------------------------------------------------------------------ scalar path */

/* Signed levels of legacy block b (value = d * L + m); returns d, *m = 0 for Q4_0/Q5_0/Q8_0. */
static float legacy_levels(dtype wt, const uint8_t *row, int b, int *L, float *m) {
    *m = 0.0f;
    if (wt == DTYPE_Q8_0) {
        const blk_q8_0 *p = (const blk_q8_0 *)row + b;
        for (int j = 0; j < QK; j++)
            L[j] = p->qs[j];
        return f16_to_f32(p->d);
    }
    const uint8_t *qs, *qh = NULL;
    uint16_t d, mm = 0;
    int off = 0;
    switch (wt) {
    case DTYPE_Q4_0: {
        const blk_q4_0 *p = (const blk_q4_0 *)row + b;
        qs = p->qs, d = p->d, off = 8;
        break;
    }
    case DTYPE_Q4_1: {
        const blk_q4_1 *p = (const blk_q4_1 *)row + b;
        qs = p->qs, d = p->d, mm = p->m;
        break;
    }
    case DTYPE_Q5_0: {
        const blk_q5_0 *p = (const blk_q5_0 *)row + b;
        qs = p->qs, qh = p->qh, d = p->d, off = 16;
        break;
    }
    default: {
        const blk_q5_1 *p = (const blk_q5_1 *)row + b;
        qs = p->qs, qh = p->qh, d = p->d, mm = p->m;
        break;
    }
    }
    uint32_t h = 0;
    if (qh) memcpy(&h, qh, 4);
    for (int j = 0; j < QK / 2; j++) {
        L[j] = (qs[j] & 15) + (int)((h >> j) & 1) * 16 - off;
        L[j + 16] = (qs[j] >> 4) + (int)((h >> (j + 16)) & 1) * 16 - off;
    }
    if (mm) *m = f16_to_f32(mm);
    return f16_to_f32(d);
}

/* Levels of K-quant block b: value = d * sc[e/16] * L[e] - dmin * mn[e/16] (Q4_K/Q5_K: levels
 * 0..31 and each 32-sub-block's scale/min in two 16-groups; Q6_K: L = q - 32, mn = 0). */
static void kquant_levels(dtype wt, const uint8_t *row, int b, int *L, int *sc, int *mn, float *d,
                          float *dmin) {
    if (wt == DTYPE_Q6_K) {
        const blk_q6_k *p = (const blk_q6_k *)row + b;
        for (int e = 0; e < QK_K; e++) {
            const int h = e / 128, s = (e / 32) % 4, l = e % 32;
            int q = (p->ql[64 * h + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 15;
            L[e] = (q | ((p->qh[32 * h + l] >> (2 * s)) & 3) << 4) - 32;
        }
        for (int g = 0; g < 16; g++)
            sc[g] = p->scales[g], mn[g] = 0;
        *d = f16_to_f32(p->d), *dmin = 0.0f;
        return;
    }
    const uint8_t *s12, *qs, *qh = NULL;
    if (wt == DTYPE_Q4_K) {
        const blk_q4_k *p = (const blk_q4_k *)row + b;
        s12 = p->scales, qs = p->qs, *d = f16_to_f32(p->d), *dmin = f16_to_f32(p->dmin);
    } else {
        const blk_q5_k *p = (const blk_q5_k *)row + b;
        s12 = p->scales, qs = p->qs, qh = p->qh;
        *d = f16_to_f32(p->d), *dmin = f16_to_f32(p->dmin);
    }
    for (int j = 0; j < 8; j++) {
        int s, m;
        quant_k4_scale_min(s12, j, &s, &m);
        sc[2 * j] = sc[2 * j + 1] = s, mn[2 * j] = mn[2 * j + 1] = m;
        const int c = j / 2, h = j % 2;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = ((qs[32 * c + l] >> (4 * h)) & 15) +
                            (qh ? ((qh[l] >> j) & 1) << 4 : 0); /* qh bit 2c + h = j */
    }
}

static float dot_scalar(const quant_mm_args *a, int m, int n) {
    const uint8_t *xr = a->xq + (size_t)m * a->lay.row_bytes;
    const int8_t *xq = (const int8_t *)xr;
    const float *xd = (const float *)(xr + a->lay.off_d);
    const uint8_t *wr = (const uint8_t *)a->w + (size_t)n * a->w_row;
    float acc = 0.0f;
    int L[QK_K];
    if (a->wt == DTYPE_Q8_K) {
        for (int b = 0; b < a->lay.nb; b++) {
            const blk_q8_k *p = (const blk_q8_k *)wr + b;
            int32_t s = 0;
            for (int e = 0; e < QK_K; e++)
                s += p->qs[e] * xq[b * QK_K + e];
            acc += (p->d * xd[b]) * (float)s;
        }
    } else if (a->lay.bl == QK_K) {
        const int16_t *bs = (const int16_t *)(xr + a->lay.off_aux);
        int sc[16], mn[16];
        float d, dmin;
        for (int b = 0; b < a->lay.nb; b++) {
            kquant_levels(a->wt, wr, b, L, sc, mn, &d, &dmin);
            int32_t s = 0, ms = 0;
            for (int g = 0; g < 16; g++) {
                int32_t gs = 0;
                for (int e = 16 * g; e < 16 * g + 16; e++)
                    gs += L[e] * xq[b * QK_K + e];
                s += sc[g] * gs;
                ms += mn[g] * bs[b * 16 + g];
            }
            acc += (d * xd[b]) * (float)s - (dmin * xd[b]) * (float)ms;
        }
    } else {
        const float *sx8 = (const float *)(xr + a->lay.off_aux);
        for (int b = 0; b < a->lay.nb; b++) {
            float m0;
            const float d = legacy_levels(a->wt, wr, b, L, &m0);
            int32_t s = 0;
            for (int j = 0; j < QK; j++)
                s += L[j] * xq[b * QK + j];
            acc += (d * xd[b]) * (float)s + m0 * (sx8[b] * 8.0f);
        }
    }
    return acc + (a->bias ? a->bias[n] : 0.0f);
}

void quant_mm_rows_scalar(const quant_mm_args *a, int n0, int n1) {
    for (int m = 0; m < a->M; m++)
        for (int n = n0; n < n1; n++)
            a->y[(size_t)m * a->ldy + n] = dot_scalar(a, m, n);
}

/* ------------------------------------------------------------------ dispatch */

#define MAX_PARTS 4

typedef struct {
    quant_mm_args a; /* the first part; the others differ in w, N, bias, y, ldy */
    kern_mm_part parts[MAX_PARTS];
    const uint8_t *packed[MAX_PARTS]; /* AMX: the parts' repacked weights */
    int n_parts, N_total;
    const float *x;
    int ldx, path;
} quant_mm_job;

static void prep(const quant_mm_job *j, int m0, int m1) {
    if (j->path >= KERN_MM_AVX512)
        quant_mm_prep_rows_avx512(&j->a, j->x, j->ldx, m0, m1);
    else if (j->path == KERN_MM_AVX2)
        quant_mm_prep_rows_avx2(&j->a, j->x, j->ldx, m0, m1);
    else
        quant_mm_prep_rows(&j->a, j->x, j->ldx, m0, m1);
}

static void prep_task(void *ctx, int ith, int nth) {
    const quant_mm_job *j = ctx;
    long lo, hi;
    tp_split(j->a.M, 1, ith, nth, &lo, &hi);
    if (lo < hi) prep(j, (int)lo, (int)hi);
}

/* This thread's share of the concatenated outputs of every part, each part as if alone. */
static void rows_task(void *ctx, int ith, int nth) {
    const quant_mm_job *j = ctx;
    long lo, hi;
    tp_split(j->N_total, 16, ith, nth, &lo, &hi);
    int off = 0, n0, n1;
    for (int p = 0; p < j->n_parts && lo < hi; off += j->parts[p].N, p++) {
        if (!kern_part_share(lo, hi, off, j->parts[p].N, &n0, &n1)) continue;
        quant_mm_args a = j->a;
        KERN_MM_SET_PART(a, j->parts[p]);
        if (j->path == KERN_MM_AMX)
            quant_amx_rows(&a, j->packed[p], n0, n1);
        else if (j->path == KERN_MM_AVX512)
            quant_mm_rows_avx512(&a, n0, n1);
        else if (j->path == KERN_MM_AVX2)
            quant_mm_rows_avx2(&a, n0, n1);
        else
            quant_mm_rows_scalar(&a, n0, n1);
    }
}

static void run(int path, threadpool *tp, const float *x, int M, int K, int ldx, dtype wt,
                const kern_mm_part *parts, int n_parts, void *work) {
    if (M <= 0 || n_parts <= 0) return;
    quant_mm_job j = {.a = {.xq = (const uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63),
                            .lay = quant_mm_layout_of(wt, K),
                            .M = M,
                            .K = K,
                            .wt = wt,
                            .w_row = dtype_row_bytes(wt, K),
                            .pf_tiles = kern_tune_pf_tiles(wt)},
                      .n_parts = n_parts,
                      .x = x,
                      .ldx = ldx,
                      .path = quant_mm_simd_type(wt) ? path : KERN_MM_SCALAR};
    for (int i = 0; i < n_parts; i++) {
        j.parts[i] = parts[i];
        j.N_total += parts[i].N;
        if (j.path == KERN_MM_AMX) {
            /* registered at model load (quant_amx.h); an unregistered one: the VNNI kernels */
            j.packed[i] = quant_amx_lookup(parts[i].w, wt, parts[i].N, K);
            if (!j.packed[i]) j.path = KERN_MM_AVX512;
        }
    }
    if (j.N_total <= 0) return;
    KERN_MM_SET_PART(j.a, parts[0]);
    if (tp && tp_size(tp) > 1 && M >= 4)
        tp_run(tp, prep_task, &j);
    else
        prep(&j, 0, M);
    tp_run(tp, rows_task, &j);
}

static int simd_path(kern_mm_path p, dtype wt) {
    const cpu_features *f = cpu_get();
    if (p == KERN_MM_AMX && f->amx_int8 && quant_amx_type(wt)) return KERN_MM_AMX;
    if (p >= KERN_MM_AVX512) p = f->avx512bw && f->avx512vnni ? KERN_MM_AVX512 : KERN_MM_AVX2;
    return p;
}

void quant_mm_matmul_parts(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                           dtype wt, const kern_mm_part *parts, int n_parts, void *work) {
    for (int i = 0; i < n_parts; i += MAX_PARTS)
        run(simd_path(p, wt), tp, x, M, K, ldx, wt, parts + i,
            n_parts - i < MAX_PARTS ? n_parts - i : MAX_PARTS, work);
}

void quant_mm_matmul(kern_mm_path p, threadpool *tp, const float *x, int M, int K, int ldx,
                     const void *w, dtype wt, int N, const float *bias, float *y, int ldy,
                     void *work) {
    kern_mm_part part = {.w = w, .N = N, .bias = bias, .y = y, .ldy = ldy};
    quant_mm_matmul_parts(p, tp, x, M, K, ldx, wt, &part, 1, work);
}

void quant_mm_matmul_ref(const float *x, int M, int K, int ldx, const void *w, dtype wt, int N,
                         const float *bias, float *y, int ldy) {
    if (M <= 0 || N <= 0) return;
    void *work = malloc(quant_mm_work_size(M, K, wt));
    if (!work) return;
    kern_mm_part part = {.w = w, .N = N, .bias = bias, .y = y, .ldy = ldy};
    run(KERN_MM_SCALAR, NULL, x, M, K, ldx, wt, &part, 1, work);
    free(work);
}
