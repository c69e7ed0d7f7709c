/* test_sampler_speed.c - speed smoke at Qwen2's vocabulary (151936): prints the time per token
 * for common settings. It asserts only that sampling works, never a time. */
#include "check.h"
#include "base/clock.h"
#include "engine/sampler.h"

#include <math.h>
#include <string.h>

enum { V = 151936 };

static uint64_t lcg = 0x9e3779b97f4a7c15ull;
static double unif(void) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return ((lcg >> 11) + 0.5) * 0x1.0p-53;
}

/* Logits shaped roughly like a language model's: a Gaussian bulk (sd 2.5) and a few strong
 * candidates well above it. */
static void make_logits(float *l) {
    for (int i = 0; i < V; i += 2) {
        double r = sqrt(-2 * log(unif())), t = 6.283185307179586 * unif();
        l[i] = (float)(2.5 * r * cos(t));
        if (i + 1 < V) l[i + 1] = (float)(2.5 * r * sin(t));
    }
    for (int i = 0; i < 8; i++)
        l[(int)(unif() * V)] = 14.0f + (float)i;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench(const char *name, cllm_sampling_params p, const float *logits, float *buf,
                  int iters) {
    sampler *s = NULL;
    if (sampler_create(&p, V, &s) != CLLM_OK) {
        CHECK_MSG(0, "%s: %s", name, cllm_last_error());
        return;
    }
    for (int i = 0; i < 64; i++)
        sampler_accept(s, (int32_t)(unif() * V));
    /* The median of single-token times: other work on a shared machine inflates a mean. */
    static double t[1000];
    for (int i = 0; i < iters; i++) {
        memcpy(buf, logits, V * sizeof *buf); /* penalties write into the row */
        double t0 = clock_now();
        int32_t id = sampler_sample(s, buf);
        t[i] = clock_now() - t0;
        CHECK(id >= 0 && id < V);
        sampler_accept(s, id);
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    printf("%-44s median %7.3f ms/token (min %.3f)\n", name, 1e3 * t[iters / 2], 1e3 * t[0]);
    sampler_free(s);
}

int main(void) {
    static float logits[V], buf[V];
    make_logits(logits);
    cllm_sampling_params base = {.temperature = 0.8f,
                                 .top_k = 0,
                                 .top_p = 1,
                                 .min_p = 0,
                                 .repeat_penalty = 1,
                                 .repeat_last_n = 64,
                                 .seed = 7};
    const int it = 100;
    cllm_sampling_params p = base;
    p.temperature = 0;
    bench("greedy", p, logits, buf, it);
    p = base;
    p.top_k = 40;
    bench("top-k 40, T 0.8", p, logits, buf, it);
    p = base;
    p.top_p = 0.95f;
    bench("top-p 0.95, T 0.8", p, logits, buf, it);
    p = base;
    p.min_p = 0.05f;
    bench("min-p 0.05, T 0.8", p, logits, buf, it);
    p = base;
    bench("T 0.8 only (whole vocabulary)", p, logits, buf, it);
    p = base;
    p.top_k = 40, p.top_p = 0.95f, p.min_p = 0.05f, p.repeat_penalty = 1.1f;
    bench("defaults: k 40, p 0.95, min-p 0.05, rp 1.1", p, logits, buf, it);
    p = base;
    p.top_k = 1000, p.top_p = 0.95f;
    bench("top-k 1000 + top-p 0.95", p, logits, buf, it);

    /* A flat row (sd 1, no standouts) is top-p's worst case: most of the vocabulary survives. */
    for (int i = 0; i < V; i++)
        logits[i] = (float)(unif() * 2 - 1);
    p = base;
    p.top_p = 0.95f;
    bench("top-p 0.95 on a flat row", p, logits, buf, it);
    CHECK_DONE();
}
