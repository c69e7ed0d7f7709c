/* attention.c - paged causal attention: per (token, head) scores over the token's sequence, a
 * stable softmax, and the weighted sum of V. Work is split over (token, head) pairs; the result
 * of each pair does not depend on the batch it was computed in. */
#include "kernels/attention.h"

#include "kernels/matmul.h"

#include <math.h>
#include <string.h>

size_t attn_scratch_floats(int n_ctx, int block_size, int hd) {
    return (size_t)n_ctx + 2 * (size_t)block_size * hd + (size_t)hd + 64;
}

static float dot(const float *a, const float *b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void one_head(const attn_batch *a, int t, int h, float *scratch) {
    const int hd = a->hd, bs = a->block_size;
    const int kvh = h / (a->n_heads / a->n_kv_heads);
    const int pos = a->pos[t];
    const int start = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
    const int n = pos + 1 - start;
    const float *q = a->q + (size_t)t * a->ldq + (size_t)h * hd;
    const int32_t *table = a->tables[t];
    float *scores = scratch, *kbuf = scratch + n + 16, *acc = kbuf + (size_t)bs * hd;

    float mx = -INFINITY;
    for (int j0 = start - start % bs; j0 <= pos; j0 += bs) {
        int blk = table[j0 / bs];
        const uint8_t *kp = a->k + (size_t)blk * a->block_bytes + (size_t)kvh * a->head_bytes;
        const float *kf = (const float *)kp;
        int lo = j0 < start ? start - j0 : 0, hi = pos - j0 + 1 < bs ? pos - j0 + 1 : bs;
        if (a->dt != DTYPE_F32) {
            kern_to_f32(kp + (size_t)lo * hd * dtype_size(a->dt), a->dt, (hi - lo) * hd, kbuf + (size_t)lo * hd);
            kf = kbuf;
        }
        for (int s = lo; s < hi; s++) {
            float sc = dot(q, kf + (size_t)s * hd, hd) * a->scale;
            scores[j0 + s - start] = sc;
            if (sc > mx) mx = sc;
        }
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    float inv = 1.0f / sum;
    memset(acc, 0, sizeof(float) * (size_t)hd);
    for (int j0 = start - start % bs; j0 <= pos; j0 += bs) {
        int blk = table[j0 / bs];
        const uint8_t *vp = a->v + (size_t)blk * a->block_bytes + (size_t)kvh * a->head_bytes;
        const float *vf = (const float *)vp;
        int lo = j0 < start ? start - j0 : 0, hi = pos - j0 + 1 < bs ? pos - j0 + 1 : bs;
        if (a->dt != DTYPE_F32) {
            kern_to_f32(vp + (size_t)lo * hd * dtype_size(a->dt), a->dt, (hi - lo) * hd, kbuf + (size_t)lo * hd);
            vf = kbuf;
        }
        for (int s = lo; s < hi; s++) {
            float p = scores[j0 + s - start];
            const float *vr = vf + (size_t)s * hd;
            for (int d = 0; d < hd; d++) acc[d] += p * vr[d];
        }
    }
    float *o = a->out + (size_t)t * a->ldo + (size_t)h * hd;
    for (int d = 0; d < hd; d++) o[d] = acc[d] * inv;
}

static void attn_worker(void *ctx, int ith, int nth) {
    const attn_batch *a = ctx;
    long lo, hi;
    tp_split((long)a->n_tokens * a->n_heads, 1, ith, nth, &lo, &hi);
    float *scratch = a->scratch + (size_t)ith * a->scratch_per_thread;
    for (long i = lo; i < hi; i++) one_head(a, (int)(i / a->n_heads), (int)(i % a->n_heads), scratch);
}

void kern_attention(threadpool *tp, const attn_batch *a) { tp_run(tp, attn_worker, (void *)a); }
