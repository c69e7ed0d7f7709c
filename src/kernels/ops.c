/* ops.c - norms, RoPE and activations (plain C; these are a small share of the time). */
#include "kernels/ops.h"

#include "kernels/vexp.h"

#include "base/cpu.h"

void kern_silu_mul_avx512(float *g, const float *u, int n);

#include <math.h>

/* Sums use 8 independent partial sums in a fixed order so the compiler can vectorise them
 * without -ffast-math and the result does not depend on the batch. */
static float sum_sq(const float *x, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j] * x[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += x[i] * x[i];
    return s;
}

static float sum(const float *x, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += x[i];
    return s;
}

void kern_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    float r = 1.0f / sqrtf(sum_sq(x, n) / (float)n + eps);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * r * w[i];
}

void kern_layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps) {
    float mean = sum(x, n) / (float)n;
    float acc[8] = {0}, var;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float d = x[i + j] - mean;
            acc[j] += d * d;
        }
    var = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    float r = 1.0f / sqrtf(var / (float)n + eps);
    for (i = 0; i < n; i++)
        y[i] = (x[i] - mean) * r * w[i] + b[i];
}

void kern_rope_table(float *cs, int hd, const double *inv_freq, int pos) {
    int h = hd / 2;
    for (int i = 0; i < h; i++) {
        double a = (double)pos * inv_freq[i];
        cs[i] = (float)cos(a);
        cs[h + i] = (float)sin(a);
    }
}

void kern_rope(float *x, int n_heads, int hd, const float *cs) {
    int h = hd / 2;
    const float *c = cs, *s = cs + h;
    for (int hh = 0; hh < n_heads; hh++) {
        float *v = x + (long)hh * hd;
        for (int i = 0; i < h; i++) {
            float a = v[i], b = v[i + h];
            v[i] = a * c[i] - b * s[i];
            v[i + h] = b * c[i] + a * s[i];
        }
    }
}

void kern_rope_adjacent(float *x, int n_heads, int hd, const float *cs) {
    int h = hd / 2;
    const float *c = cs, *s = cs + h;
    for (int hh = 0; hh < n_heads; hh++) {
        float *v = x + (long)hh * hd;
        for (int i = 0; i < h; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * c[i] - b * s[i];
            v[2 * i + 1] = b * c[i] + a * s[i];
        }
    }
}

void kern_silu_mul(float *g, const float *u, int n) {
    if (cpu_get()->avx512f) {
        kern_silu_mul_avx512(g, u, n);
        return;
    }
    for (int i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + kern_expf(-g[i])) * u[i];
}

void kern_gelu_tanh(float *x, int n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void kern_add(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++)
        y[i] += x[i];
}
