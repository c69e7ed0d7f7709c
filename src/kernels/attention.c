/* attention.c - paged causal attention: dispatch by CPU features and threads over
 * (token, kv head) pairs; the generic (baseline x86-64) build of the kernel body. The result for
 * a token never depends on the batch it was computed in. */
#define ATTN_SUFFIX _generic
#include "kernels/attention_impl.h"

#include "base/cpu.h"

void kern_attention_rows_avx2(const attn_batch *a, long lo, long hi, long step, float *scratch);
void kern_attention_rows_avx512(const attn_batch *a, long lo, long hi, long step, float *scratch);

size_t attn_scratch_floats(int n_ctx, int block_size, int hd, int group) {
    size_t n_pad = ((size_t)n_ctx + block_size + 15) & ~(size_t)15;
    return (size_t)group * n_pad + (size_t)block_size * hd + (size_t)group * hd + block_size + 64;
}

static void attn_worker(void *ctx, int ith, int nth) {
    const attn_batch *a = ctx;
    /* round-robin, not contiguous ranges: later tokens of a causal prefill cost more */
    long lo = ith, hi = (long)a->n_tokens * a->n_kv_heads, step = nth;
    float *scratch = a->scratch + (size_t)ith * a->scratch_per_thread;
    const cpu_features *f = cpu_get();
    if (f->avx512f)
        kern_attention_rows_avx512(a, lo, hi, step, scratch);
    else if (f->avx2)
        kern_attention_rows_avx2(a, lo, hi, step, scratch);
    else
        kern_attention_rows_generic(a, lo, hi, step, scratch);
}

void kern_attention(threadpool *tp, const attn_batch *a) {
    /* a single short row is cheaper on the caller than a pool wake-up */
    if (a->n_tokens == 1 && a->pos[0] < 64)
        attn_worker((void *)a, 0, 1);
    else
        tp_run(tp, attn_worker, (void *)a);
}
