/* test_sampler_dist.c - the sampled distribution under top-k / top-p / min-p / temperature:
 * hand-computed cases, then a grid of random cases against a sort-and-scan oracle. */
#include "check.h"
#include "engine/sampler.h"

#include <math.h>
#include <string.h>

enum { MAXV = 8192 };

/* The largest |count - mean| / sd and chi-square / bound seen, reported at the end. */
static double worst_z, worst_chi2;

static cllm_sampling_params params(float t, int k, float top_p, float min_p) {
    cllm_sampling_params p = {.temperature = t,
                              .top_k = k,
                              .top_p = top_p,
                              .min_p = min_p,
                              .repeat_penalty = 1.0f,
                              .repeat_last_n = 0,
                              .seed = 12345};
    return p;
}

/* The documented semantics written the obvious way: sort by (logit desc, id asc), cut the
 * top-k prefix, softmax and cut at the cumulative top_p, keep p >= min_p * p_max, then
 * softmax(logit / T). Sets *ambiguous when a cut falls within rounding of its threshold, where
 * the sampler's float arithmetic may legitimately decide the other way. */
static void oracle(const float *l, int n, const cllm_sampling_params *p, double *q,
                   int *ambiguous) {
    static int ord[MAXV];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(l[i]) && l[i] > -INFINITY) ord[m++] = i;
    for (int i = 1; i < m; i++) /* insertion sort: n is small and this is obviously right */
        for (int j = i; j > 0; j--) {
            int a = ord[j - 1], b = ord[j];
            if (l[a] > l[b] || (l[a] == l[b] && a < b)) break;
            ord[j - 1] = b;
            ord[j] = a;
        }
    int keep = m;
    if (p->top_k > 0 && p->top_k < keep) keep = p->top_k;
    double lmax = l[ord[0]];
    if (p->top_p < 1) {
        double z = 0, cum = 0;
        for (int j = 0; j < keep; j++)
            z += exp(l[ord[j]] - lmax);
        for (int j = 0; j < keep; j++) {
            cum += exp(l[ord[j]] - lmax) / z;
            if (fabs(cum - p->top_p) < 1e-5) *ambiguous = 1;
            if (cum >= p->top_p) {
                keep = j + 1;
                break;
            }
        }
    }
    if (p->min_p > 0) {
        double z = 0;
        for (int j = 0; j < keep; j++)
            z += exp(l[ord[j]] - lmax);
        double pmax = 1.0 / z;
        int kept = 0;
        for (int j = 0; j < keep; j++) {
            double pj = exp(l[ord[j]] - lmax) / z;
            if (fabs(pj - p->min_p * pmax) < 1e-5 * pmax) *ambiguous = 1;
            if (pj >= p->min_p * pmax) kept = j + 1;
        }
        keep = kept;
    }
    memset(q, 0, (size_t)n * sizeof *q);
    double z = 0;
    for (int j = 0; j < keep; j++)
        z += exp((l[ord[j]] - lmax) / p->temperature);
    for (int j = 0; j < keep; j++)
        q[ord[j]] = exp((l[ord[j]] - lmax) / p->temperature) / z;
}

/* Draw n_samples tokens and require: zero draws outside the support; every in-support count
 * within 6 sigma (+4 for the discreteness of small expected counts) of n_samples * q, which a
 * correct sampler fails with probability ~1e-6 per token even at expected counts near 5; and
 * Pearson's chi-square over the support below dof + 6 sqrt(2 dof) + 10, which catches many
 * small per-token errors that no single count reveals. */
static void check_dist(const char *name, const float *l, int n, const cllm_sampling_params *p,
                       const double *q, int n_samples) {
    static int count[MAXV];
    static float buf[MAXV];
    memset(count, 0, sizeof count);
    sampler *s = NULL;
    if (sampler_create(p, n, &s) != CLLM_OK) {
        CHECK_MSG(0, "%s: sampler_create: %s", name, cllm_last_error());
        return;
    }
    for (int i = 0; i < n_samples; i++) {
        memcpy(buf, l, (size_t)n * sizeof *buf);
        int32_t id = sampler_sample(s, buf);
        CHECK_MSG(id >= 0 && id < n, "%s: id %d out of range", name, id);
        if (id >= 0 && id < n) count[id]++;
    }
    sampler_free(s);
    double chi2 = 0;
    int support = 0;
    for (int i = 0; i < n; i++) {
        if (q[i] == 0) {
            CHECK_MSG(count[i] == 0, "%s: excluded token %d drawn %d times", name, i, count[i]);
            continue;
        }
        double mu = n_samples * q[i], sd = sqrt(mu * (1 - q[i]));
        double dev = fabs(count[i] - mu);
        CHECK_MSG(dev <= 6 * sd + 4, "%s: token %d drawn %d times, expected %.1f (sd %.1f)", name,
                  i, count[i], mu, sd);
        if (sd > 0 && dev / sd > worst_z) worst_z = dev / sd;
        chi2 += dev * dev / mu;
        support++;
    }
    if (support > 1) {
        double dof = support - 1, bound = dof + 6 * sqrt(2 * dof) + 10;
        CHECK_MSG(chi2 <= bound, "%s: chi-square %.1f over %d tokens exceeds %.1f", name, chi2,
                  support, bound);
        if (chi2 / bound > worst_chi2) worst_chi2 = chi2 / bound;
    }
}

static void hand_case(const char *name, const float *l, int n, cllm_sampling_params p,
                      const double *want) {
    /* The oracle must reproduce the hand-computed distribution before it judges anything. */
    static double q[MAXV];
    int amb = 0;
    oracle(l, n, &p, q, &amb);
    CHECK_MSG(!amb, "%s: hand case sits on a threshold", name);
    for (int i = 0; i < n; i++)
        CHECK_MSG(fabs(q[i] - want[i]) < 1e-6, "%s: oracle q[%d] = %g, hand %g", name, i, q[i],
                  want[i]);
    check_dist(name, l, n, &p, want, 120000);
}

static void test_hand(void) {
    /* Probabilities 0.1, 0.4, 0.2, 0.3 (plus a constant, which softmax ignores). Sorted:
     * 1 (0.4), 3 (0.3), 2 (0.2), 0 (0.1). */
    const double P[4] = {0.1, 0.4, 0.2, 0.3};
    float l[4];
    for (int i = 0; i < 4; i++)
        l[i] = (float)(log(P[i]) + 2.0);

    const double plain[4] = {0.1, 0.4, 0.2, 0.3};
    hand_case("no filters", l, 4, params(1, 0, 1, 0), plain);
    /* cumulative 0.4, 0.7 >= 0.65: keep {1, 3} -> 4/7, 3/7 */
    const double tp[4] = {0, 4.0 / 7, 0, 3.0 / 7};
    hand_case("top_p 0.65", l, 4, params(1, 0, 0.65f, 0), tp);
    /* threshold 0.45 * 0.4 = 0.18 drops only 0.1 -> 4/9, 2/9, 3/9 */
    const double mp[4] = {0, 4.0 / 9, 2.0 / 9, 3.0 / 9};
    hand_case("min_p 0.45", l, 4, params(1, 0, 1, 0.45f), mp);
    /* top-2 at T = 0.5: q ~ p^2 over {0.4, 0.3} -> 16/25, 9/25 */
    const double kt[4] = {0, 16.0 / 25, 0, 9.0 / 25};
    hand_case("top_k 2, T 0.5", l, 4, params(0.5f, 2, 1, 0), kt);
    /* T = 2: q ~ sqrt(p) */
    double sq[4], ssum = 0;
    for (int i = 0; i < 4; i++)
        ssum += sqrt(P[i]);
    for (int i = 0; i < 4; i++)
        sq[i] = sqrt(P[i]) / ssum;
    hand_case("T 2", l, 4, params(2, 0, 1, 0), sq);
    /* top-p sees the top-k set renormalised: {0.4, 0.3, 0.2} / 0.9 has cumulative 0.444,
     * 0.778 >= 0.75, so 2 tokens (on the full distribution it would take 3). */
    hand_case("top_k 3, top_p 0.75", l, 4, params(1, 3, 0.75f, 0), tp);
    /* Temperature comes after top-p: 0.65 on the untempered distribution keeps {1, 3}; on the
     * T = 3 distribution (0.19, 0.30, 0.24, 0.27) it would keep three. q ~ p^(1/3). */
    double a = cbrt(0.4), b = cbrt(0.3);
    const double tt[4] = {0, a / (a + b), 0, b / (a + b)};
    hand_case("top_p 0.65, T 3", l, 4, params(3, 0, 0.65f, 0), tt);
    /* top-k 1 is greedy. */
    const double k1[4] = {0, 1, 0, 0};
    hand_case("top_k 1", l, 4, params(1, 1, 1, 0), k1);

    /* A top-k cut through equal logits keeps the lower ids. */
    const float eq[6] = {1, 1, 1, 1, 1, 1};
    const double e2[6] = {0.5, 0.5, 0, 0, 0, 0};
    hand_case("ties, top_k 2", eq, 6, params(1, 2, 1, 0), e2);
    const double e6[6] = {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6};
    hand_case("ties, min_p 0.9", eq, 6, params(1, 0, 1, 0.9f), e6);
}

static uint64_t lcg = 0x243f6a8885a308d3ull;
static float uniform(float lo, float hi) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((lcg >> 40) * 0x1.0p-24);
}

static void oracle_case(const char *name, const float *l, int n, cllm_sampling_params p,
                        int n_samples) {
    static double q[MAXV];
    int amb = 0;
    oracle(l, n, &p, q, &amb);
    if (amb) {
        printf("skipped %s: a cut sits within rounding of its threshold\n", name);
        return;
    }
    check_dist(name, l, n, &p, q, n_samples);
}

static void test_grid(void) {
    float l[12];
    for (int i = 0; i < 12; i++)
        l[i] = uniform(-3, 3);
    l[7] = l[2]; /* a tie, so cuts through equal logits are exercised */
    l[10] = -INFINITY;
    const int ks[] = {0, 3, 7};
    const float tps[] = {1, 0.5f, 0.9f}, mps[] = {0, 0.05f, 0.3f}, ts[] = {0.6f, 1, 1.8f};
    int cases = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
                for (int d = 0; d < 3; d++) {
                    char name[96];
                    snprintf(name, sizeof name, "grid k=%d top_p=%g min_p=%g T=%g", ks[a], tps[b],
                             mps[c], ts[d]);
                    oracle_case(name, l, 12, params(ts[d], ks[a], tps[b], mps[c]), 12000);
                    cases++;
                }
    printf("grid: %d cases\n", cases);
}

/* A larger vocabulary takes the quickselect top-k path (k > 256) and many top-p rounds. */
static void test_large(void) {
    static float l[400];
    for (int i = 0; i < 400; i++)
        l[i] = uniform(-4, 4);
    oracle_case("v400 k=300 top_p=0.9", l, 400, params(1, 300, 0.9f, 0), 40000);
    oracle_case("v400 top_p=0.8 T=0.7", l, 400, params(0.7f, 0, 0.8f, 0), 40000);
    oracle_case("v400 k=50 min_p=0.02 T=1.3", l, 400, params(1.3f, 50, 1, 0.02f), 40000);
    /* Logits within 0.05 of each other share top-p's 1/64-nat histogram buckets, so the cut
     * falls inside a crowded bucket that must be ranked token by token. */
    for (int i = 0; i < 400; i++)
        l[i] = uniform(0, 0.05f);
    oracle_case("v400 narrow top_p=0.5", l, 400, params(1, 0, 0.5f, 0), 40000);
}

/* top-k above the heap's limit (4096) takes the copy-and-quickselect path. A nearly flat row
 * makes every excluded token as likely as a kept one, so a wrong cut shows up as thousands of
 * draws outside the support; the in-support counts get the usual bound. */
static void test_big_k(void) {
    enum { BV = 5000 };
    static float l[BV];
    for (int i = 0; i < BV; i++)
        l[i] = uniform(0, 0.5f);
    oracle_case("v5000 k=4200", l, BV, params(1, 4200, 1, 0), 6000);
    /* All equal: the cut keeps exactly ids 0..4199. */
    for (int i = 0; i < BV; i++)
        l[i] = 0.25f;
    oracle_case("v5000 ties k=4200", l, BV, params(1, 4200, 1, 0), 3000);
}

int main(void) {
    test_hand();
    test_grid();
    test_large();
    test_big_k();
    printf("largest deviation: %.2f sigma; largest chi-square: %.2f of its bound\n", worst_z,
           worst_chi2);
    CHECK_DONE();
}
