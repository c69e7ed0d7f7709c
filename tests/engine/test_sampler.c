/* test_sampler.c - exact sampler behaviour: greedy argmax and ties, penalties against
 * hand-computed logits, parameter validation, NaN/inf logits, seeding and reset. */
#include "check.h"
#include "engine/sampler.h"

#include <math.h>
#include <string.h>

static cllm_sampling_params plain(float temperature) {
    /* Everything off: each test switches on what it exercises. */
    cllm_sampling_params p = {.temperature = temperature,
                              .top_k = 0,
                              .top_p = 1.0f,
                              .min_p = 0.0f,
                              .repeat_penalty = 1.0f,
                              .repeat_last_n = 64,
                              .presence_penalty = 0.0f,
                              .frequency_penalty = 0.0f,
                              .seed = 1};
    return p;
}

static sampler *make(const cllm_sampling_params *p, int vocab) {
    sampler *s = NULL;
    cllm_status st = sampler_create(p, vocab, &s);
    CHECK_MSG(st == CLLM_OK && s, "sampler_create: %s", cllm_last_error());
    return s;
}

static int32_t greedy_of(const float *logits, int n) {
    cllm_sampling_params p = plain(0.0f);
    sampler *s = make(&p, n);
    float buf[16];
    memcpy(buf, logits, (size_t)n * sizeof *buf);
    int32_t id = sampler_sample(s, buf);
    sampler_free(s);
    return id;
}

static void test_greedy(void) {
    const float a[] = {0.5f, -1.0f, 7.25f, 3.0f, 7.0f};
    CHECK(greedy_of(a, 5) == 2);
    const float tie[] = {1.0f, 3.0f, 3.0f, 2.0f};
    CHECK(greedy_of(tie, 4) == 1);
    const float nan_first[] = {NAN, 1.0f, 5.0f, 5.0f};
    CHECK(greedy_of(nan_first, 4) == 2);
    const float neg[] = {-5.0f, -3.0f, -4.0f};
    CHECK(greedy_of(neg, 3) == 1);

    /* Negative temperature is greedy too, and draws nothing from the RNG. */
    cllm_sampling_params p = plain(-1.0f);
    sampler *s = make(&p, 5);
    for (int i = 0; i < 100; i++) {
        float buf[5];
        memcpy(buf, a, sizeof buf);
        CHECK(sampler_sample(s, buf) == 2);
    }
    sampler_free(s);
}

/* Apply the penalties of `s` to a copy of `in` through a greedy sample (which writes the
 * penalised logits back) and compare with `want` exactly: every value here is a dyadic
 * rational, so float arithmetic is exact. */
static void check_penalised(sampler *s, const float *in, const float *want, int n,
                            int32_t want_id) {
    float buf[16];
    memcpy(buf, in, (size_t)n * sizeof *buf);
    int32_t id = sampler_sample(s, buf);
    for (int i = 0; i < n; i++)
        CHECK_MSG(buf[i] == want[i], "id %d: %g, want %g", i, buf[i], want[i]);
    CHECK_MSG(id == want_id, "picked %d, want %d", id, want_id);
}

static void accept_all(sampler *s, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        sampler_accept(s, ids[i]);
}

static void test_penalties(void) {
    const float logits[6] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};
    const int32_t hist[6] = {3, 1, 0, 1, 1, 4};
    cllm_sampling_params p = plain(0.0f);
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;

    /* Window 4 holds {0, 1, 1, 4}; token 3 has slid out.
     *   id0:  2/2 = 1,  - (1*0.5 + 0.25) = 0.25
     *   id1: -1*2 = -2, - (2*0.5 + 0.25) = -3.25
     *   id4: -2*2 = -4, - (1*0.5 + 0.25) = -4.75 */
    p.repeat_last_n = 4;
    sampler *s = make(&p, 6);
    accept_all(s, hist, 6);
    const float w4[6] = {0.25f, -3.25f, 0.5f, 3.0f, -4.75f, 0.0f};
    check_penalised(s, logits, w4, 6, 3);
    /* The penalties are a function of the window, not cumulative across calls. */
    check_penalised(s, logits, w4, 6, 3);

    /* reset forgets the history: nothing penalised. */
    sampler_reset(s);
    check_penalised(s, logits, logits, 6, 3);
    sampler_free(s);

    /* Whole history (-1): 3 is back (3/2 - 0.75 = 0.75) and 1 counts three times
     * (-2 - (1.5 + 0.25) = -3.75); 3 still wins over 2 (0.5). */
    p.repeat_last_n = -1;
    s = make(&p, 6);
    accept_all(s, hist, 6);
    const float wall[6] = {0.25f, -3.75f, 0.5f, 0.75f, -4.75f, 0.0f};
    check_penalised(s, logits, wall, 6, 3);
    sampler_free(s);

    /* Window 0: penalties off whatever their values. */
    p.repeat_last_n = 0;
    s = make(&p, 6);
    accept_all(s, hist, 6);
    check_penalised(s, logits, logits, 6, 3);
    sampler_free(s);

    /* Repetition penalty alone, llama.cpp style: a zero logit stays zero; a strong penalty on
     * the leader hands greedy to the runner-up (3/4 = 0.75 < 2). */
    cllm_sampling_params r = plain(0.0f);
    r.repeat_penalty = 4.0f;
    r.repeat_last_n = 8;
    s = make(&r, 6);
    const int32_t h2[4] = {3, 5, 4, 3};
    accept_all(s, h2, 4);
    const float wr[6] = {2.0f, -1.0f, 0.5f, 0.75f, -8.0f, 0.0f};
    check_penalised(s, logits, wr, 6, 0);
    sampler_free(s);

    /* Ring wrap-around: window 3 over 0,1,2,3,4,5,0,0 holds {5, 0, 0}. Presence 1 and
     * frequency 0.5 on an all-zero row: id0 -> -(2*0.5 + 1) = -2, id5 -> -1.5. Out-of-range
     * ids are ignored, not recorded. */
    cllm_sampling_params f = plain(0.0f);
    f.repeat_last_n = 3;
    f.presence_penalty = 1.0f;
    f.frequency_penalty = 0.5f;
    s = make(&f, 6);
    const int32_t h3[10] = {0, 1, 2, -1, 3, 4, 6, 5, 0, 0};
    accept_all(s, h3, 10);
    const float zero[6] = {0};
    const float wf[6] = {-2.0f, 0.0f, 0.0f, 0.0f, 0.0f, -1.5f};
    check_penalised(s, zero, wf, 6, 1);
    sampler_free(s);
}

static void expect_invalid(cllm_sampling_params p, int vocab, const char *needle) {
    sampler *s = (sampler *)&p; /* must be overwritten with NULL */
    cllm_status st = sampler_create(&p, vocab, &s);
    CHECK_MSG(st == CLLM_ERR_INVALID_ARG, "%s: status %d", needle, (int)st);
    CHECK(s == NULL);
    CHECK_MSG(strstr(cllm_last_error(), needle) != NULL, "message '%s' lacks '%s'",
              cllm_last_error(), needle);
}

static void test_params(void) {
    cllm_sampling_params p;
#define BAD(field, value, needle)                                                                  \
    do {                                                                                           \
        p = plain(1.0f);                                                                           \
        p.field = value;                                                                           \
        expect_invalid(p, 10, needle);                                                             \
    } while (0)
    BAD(temperature, NAN, "temperature");
    BAD(temperature, INFINITY, "temperature");
    BAD(top_p, 0.0f, "top_p");
    BAD(top_p, -0.5f, "top_p");
    BAD(top_p, 1.5f, "top_p");
    BAD(top_p, NAN, "top_p");
    BAD(min_p, -0.1f, "min_p");
    BAD(min_p, 1.1f, "min_p");
    BAD(min_p, NAN, "min_p");
    BAD(repeat_penalty, 0.0f, "repeat_penalty");
    BAD(repeat_penalty, -1.0f, "repeat_penalty");
    BAD(repeat_penalty, NAN, "repeat_penalty");
    BAD(repeat_penalty, INFINITY, "repeat_penalty");
    BAD(presence_penalty, -2.5f, "presence_penalty");
    BAD(presence_penalty, NAN, "presence_penalty");
    BAD(frequency_penalty, 3.0f, "frequency_penalty");
    BAD(frequency_penalty, INFINITY, "frequency_penalty");
    BAD(repeat_last_n, -2, "repeat_last_n");
#undef BAD
    p = plain(1.0f);
    expect_invalid(p, 0, "vocab");
    expect_invalid(p, -3, "vocab");
    sampler *s = NULL;
    CHECK(sampler_create(NULL, 10, &s) == CLLM_ERR_INVALID_ARG && s == NULL);
    CHECK(sampler_create(&p, 10, NULL) == CLLM_ERR_INVALID_ARG);

    /* Edges that are valid: the documented "off" and "greedy" values. */
    const cllm_sampling_params ok[] = {
        {.temperature = -INFINITY, .top_p = 1, .repeat_penalty = 1, .repeat_last_n = -1},
        {.temperature = 0.7f, .top_k = -5, .top_p = 1, .min_p = 1, .repeat_penalty = 0.5f},
        {.temperature = 2,
         .top_k = 1000,
         .top_p = 1e-6f,
         .min_p = 0,
         .repeat_penalty = 1,
         .repeat_last_n = 1,
         .presence_penalty = 2,
         .frequency_penalty = 2},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        s = make(&ok[i], 10);
        sampler_free(s);
    }
    sampler_free(NULL);
}

/* Sampling with non-finite logits. */
static void test_nonfinite(void) {
    cllm_sampling_params p = plain(1.0f);
    sampler *s = make(&p, 5);
    int seen[5] = {0};
    for (int i = 0; i < 4000; i++) {
        float l[5] = {NAN, 1.0f, -INFINITY, 1.0f, NAN};
        seen[sampler_sample(s, l)]++;
    }
    CHECK(seen[0] == 0 && seen[2] == 0 && seen[4] == 0);
    CHECK(seen[1] > 1700 && seen[3] > 1700); /* 2000 each expected, sigma ~32 */

    /* +inf tokens take all the mass, shared equally. */
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 4000; i++) {
        float l[5] = {0.0f, INFINITY, 50.0f, INFINITY, NAN};
        seen[sampler_sample(s, l)]++;
    }
    CHECK(seen[0] == 0 && seen[2] == 0 && seen[4] == 0);
    CHECK(seen[1] > 1700 && seen[3] > 1700);

    /* No candidate: fall back to greedy over non-NaN (lowest -inf id), or 0 if all NaN. */
    float all_ninf[5] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK(sampler_sample(s, all_ninf) == 0);
    float all_nan[5] = {NAN, NAN, NAN, NAN, NAN};
    CHECK(sampler_sample(s, all_nan) == 0);
    float mixed[5] = {NAN, NAN, -INFINITY, NAN, -INFINITY};
    CHECK(sampler_sample(s, mixed) == 2);
    sampler_free(s);

    /* The same through every filter, and with greedy. */
    cllm_sampling_params f = plain(0.8f);
    f.top_k = 2;
    f.top_p = 0.5f;
    f.min_p = 0.1f;
    s = make(&f, 5);
    for (int i = 0; i < 200; i++) {
        float l[5] = {NAN, -INFINITY, 3.0f, NAN, -INFINITY};
        CHECK(sampler_sample(s, l) == 2);
        float m[5] = {NAN, NAN, -INFINITY, NAN, -INFINITY};
        CHECK(sampler_sample(s, m) == 2);
    }
    sampler_free(s);
    f.temperature = 0;
    s = make(&f, 5);
    float g[5] = {NAN, -INFINITY, -2.0f, INFINITY, NAN};
    CHECK(sampler_sample(s, g) == 3);
    sampler_free(s);

    /* A tiny temperature behaves as greedy instead of producing NaN weights. */
    cllm_sampling_params t = plain(1e-40f);
    s = make(&t, 5);
    for (int i = 0; i < 100; i++) {
        float l[5] = {0.1f, 0.3f, 0.2f, 0.3f, -1.0f};
        int32_t id = sampler_sample(s, l);
        CHECK(id == 1 || id == 3);
    }
    sampler_free(s);
}

static void draw(sampler *s, int32_t *out, int n, int vocab) {
    float l[100];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < vocab; j++)
            l[j] = 0.01f * (float)j;
        out[i] = sampler_sample(s, l);
    }
}

static void test_seeds(void) {
    enum { N = 1000, V = 100 };
    static int32_t a[N], b[N], c[N], d[N];
    cllm_sampling_params p = plain(1.0f);
    p.seed = 42;
    sampler *s1 = make(&p, V), *s2 = make(&p, V);
    p.seed = 43;
    sampler *s3 = make(&p, V);
    draw(s1, a, N, V);
    draw(s2, b, N, V);
    draw(s3, c, N, V);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int differ = 0;
    for (int i = 0; i < N; i++)
        differ += a[i] != c[i];
    CHECK_MSG(differ > N * 9 / 10, "seeds 42 and 43 agree on %d of %d draws", N - differ, N);

    /* reset replays the stream from the seed. */
    sampler_reset(s1);
    draw(s1, d, N, V);
    CHECK(memcmp(a, d, sizeof a) == 0);

    /* Seed 0 is an ordinary seed (splitmix64 never leaves xoshiro all-zero). */
    p.seed = 0;
    sampler *s0 = make(&p, V);
    draw(s0, d, N, V);
    int distinct = 0, hit[V] = {0};
    for (int i = 0; i < N; i++)
        distinct += hit[d[i]]++ == 0;
    CHECK_MSG(distinct > 90, "seed 0 produced only %d distinct tokens", distinct);
    sampler_free(s0);
    sampler_free(s1);
    sampler_free(s2);
    sampler_free(s3);
}

int main(void) {
    test_greedy();
    test_penalties();
    test_params();
    test_nonfinite();
    test_seeds();
    CHECK_DONE();
}
