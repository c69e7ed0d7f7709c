/* ops.h - the small per-token kernels: norms, RoPE, activations. Each row is computed with a fixed
 * operation order, independent of how many rows a batch has (batch invariance). */
#ifndef CLLM_KERNELS_OPS_H
#define CLLM_KERNELS_OPS_H

/* y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], for n elements (in place allowed). */
void kern_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
/* y = (x - mean) / sqrt(var + eps) * w + b (LayerNorm, biased variance). */
void kern_layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps);

/* Rotate one token's heads in place, HF "rotate_half" layout: pairs (i, i + hd/2).
 * cs holds cos[hd/2] then sin[hd/2] for the token's position. x is [n_heads][hd]. */
void kern_rope(float *x, int n_heads, int hd, const float *cs);
/* The same rotation for llama.cpp's GGUF layout (q/k rows permuted by its converter): pairs
 * (2i, 2i + 1) rotate by the angle of pair i. */
void kern_rope_adjacent(float *x, int n_heads, int hd, const float *cs);
/* cos/sin table for one position from per-pair inverse frequencies inv_freq[hd/2]. */
void kern_rope_table(float *cs, int hd, const double *inv_freq, int pos);

/* g[i] = silu(g[i]) * u[i] */
void kern_silu_mul(float *g, const float *u, int n);
/* x[i] = gelu_tanh(x[i]) */
void kern_gelu_tanh(float *x, int n);

/* y[i] += x[i] */
void kern_add(float *y, const float *x, int n);

#endif
