/* attention_impl.h - the body of the paged attention kernel, compiled once per instruction set
 * (attention.c, attention_avx2.c, attention_avx512.c define ATTN_SUFFIX and include this).
 *
 * K blocks are stored transposed ([kv_head][head_dim][slot]) so the scores of a whole block are
 * head_dim broadcast-FMAs over contiguous slot vectors; V blocks are [kv_head][slot][head_dim].
 * All query heads of one KV head are processed together so each K/V block is converted once. */
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/vexp.h"

#include <math.h>
#include <string.h>

#define ATTN_CAT2(a, b) a##b
#define ATTN_CAT(a, b) ATTN_CAT2(a, b)
#define ATTN_FN(name) ATTN_CAT(name, ATTN_SUFFIX)

/* sc[s] (s < bs) = sum_d q[d] * kt[d * bs + s]; an ISA file may provide ATTN_SCORES16 for bs 16 */
static inline void ATTN_FN(block_scores)(float *restrict sc, const float *restrict q,
                                         const float *restrict kt, int hd, int bs) {
#ifdef ATTN_SCORES16
    if (bs == 16) {
        ATTN_SCORES16(sc, q, kt, hd);
        return;
    }
#endif
    for (int s = 0; s < bs; s++)
        sc[s] = 0.0f;
    for (int d = 0; d < hd; d++) {
        const float qd = q[d];
        const float *kr = kt + (size_t)d * bs;
        for (int s = 0; s < bs; s++)
            sc[s] += qd * kr[s];
    }
}

/* x[j] = exp(x[j] - mx) for j < n; returns the sum (ISA files may provide ATTN_EXP_SUM) */
static inline float ATTN_FN(exp_sum)(float *x, int n, float mx) {
#ifdef ATTN_EXP_SUM
    return ATTN_EXP_SUM(x, n, mx);
#else
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        x[j] = kern_expf(x[j] - mx);
        sum += x[j];
    }
    return sum;
#endif
}

/* acc[d] += p * v[d] for d < hd */
static inline void ATTN_FN(axpy)(float *restrict acc, float p, const float *restrict v, int hd) {
#ifdef ATTN_AXPY
    ATTN_AXPY(acc, p, v, hd);
#else
    for (int d = 0; d < hd; d++)
        acc[d] += p * v[d];
#endif
}

static void ATTN_FN(kv_group)(const attn_batch *a, int t, int kvh, float *scratch) {
    const int hd = a->hd, bs = a->block_size, G = a->n_heads / a->n_kv_heads;
    const int pos = a->pos[t];
    const int start = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
    const int n = pos + 1 - start;
    const int j_first = start - start % bs;
    const int32_t *table = a->tables[t];
    const size_t es = dtype_size(a->dt), blk_elems = (size_t)bs * hd;
    /* scratch: G rows of scores (stride n_pad), one converted block, G accumulators, block scores
     */
    const size_t n_pad = ((size_t)n + bs + 15) & ~(size_t)15;
    float *scores = scratch, *buf = scores + (size_t)G * n_pad, *acc = buf + blk_elems;
    float *bsc = acc + (size_t)G * hd;
    const float *q0 = a->q + (size_t)t * a->ldq + (size_t)kvh * G * hd;

    for (int j0 = j_first; j0 <= pos; j0 += bs) {
        const int blk = table[j0 / bs];
        const uint8_t *kp = a->k + (size_t)blk * a->block_bytes + (size_t)kvh * a->head_bytes;
        const float *kt = (const float *)kp;
        if (a->dt != DTYPE_F32) {
            kern_to_f32(kp, a->dt, (int)blk_elems, buf);
            kt = buf;
        }
        const int lo = j0 < start ? start - j0 : 0, hi = pos - j0 + 1 < bs ? pos - j0 + 1 : bs;
        for (int g = 0; g < G; g++) {
            ATTN_FN(block_scores)(bsc, q0 + (size_t)g * hd, kt, hd, bs);
            float *sg = scores + (size_t)g * n_pad + (j0 - j_first);
            for (int s = lo; s < hi; s++)
                sg[s] = bsc[s] * a->scale;
        }
    }
    (void)es;
    const int off = start - j_first; /* valid scores are [off, off + n) in each row */
    float inv[64];
    for (int g = 0; g < G; g++) {
        float *sg = scores + (size_t)g * n_pad + off;
        float mx = -INFINITY;
        for (int j = 0; j < n; j++)
            mx = sg[j] > mx ? sg[j] : mx;
        inv[g] = 1.0f / ATTN_FN(exp_sum)(sg, n, mx);
    }
    memset(acc, 0, sizeof(float) * (size_t)G * hd);
    for (int j0 = j_first; j0 <= pos; j0 += bs) {
        const int blk = table[j0 / bs];
        const uint8_t *vp = a->v + (size_t)blk * a->block_bytes + (size_t)kvh * a->head_bytes;
        const int lo = j0 < start ? start - j0 : 0, hi = pos - j0 + 1 < bs ? pos - j0 + 1 : bs;
        const float *vf = (const float *)vp;
        if (a->dt != DTYPE_F32) {
            kern_to_f32(vp + (size_t)lo * hd * dtype_size(a->dt), a->dt, (hi - lo) * hd,
                        buf + (size_t)lo * hd);
            vf = buf;
        }
        for (int g = 0; g < G; g++) {
            const float *sg = scores + (size_t)g * n_pad + (j0 - j_first);
            float *ag = acc + (size_t)g * hd;
            for (int s = lo; s < hi; s++)
                ATTN_FN(axpy)(ag, sg[s], vf + (size_t)s * hd, hd);
        }
    }
    for (int g = 0; g < G; g++) {
        float *o = a->out + (size_t)t * a->ldo + (size_t)(kvh * G + g) * hd;
        for (int d = 0; d < hd; d++)
            o[d] = acc[(size_t)g * hd + d] * inv[g];
    }
}

/* items i = lo, lo + step, ... < hi, item = (token, kv head) */
void ATTN_FN(kern_attention_rows)(const attn_batch *a, long lo, long hi, long step,
                                  float *scratch) {
    for (long i = lo; i < hi; i += step)
        ATTN_FN(kv_group)(a, (int)(i / a->n_kv_heads), (int)(i % a->n_kv_heads), scratch);
}
