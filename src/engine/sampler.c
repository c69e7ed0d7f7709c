/* sampler.c - one sequence's sampler: token history for the penalties, the candidate filters
 * (top-k, top-p, min-p), temperature and the draw from a per-sampler xoshiro256** stream.
 *
 * Semantics, in the order they are applied (llama.cpp's default chain):
 *  1. Penalties over the last repeat_last_n accepted tokens (-1: the whole history, 0: off).
 *     For each distinct token t in that window, seen count(t) times:
 *       logit = logit > 0 ? logit / repeat_penalty : logit * repeat_penalty   (llama.cpp)
 *       logit -= count(t) * frequency_penalty + presence_penalty             (OpenAI)
 *     The penalties are written into the caller's logits row (sampler.h allows this).
 *  2. temperature <= 0: greedy argmax; ties go to the lowest id.
 *  3. Candidates are ordered by (logit descending, id ascending); this total order settles
 *     every tie (a top-k cut through equal logits keeps the lower ids).
 *     top-k (1 <= k < vocab): keep the first k.
 *     top-p (< 1): p = softmax of the surviving logits at temperature 1; keep the shortest
 *       prefix whose cumulative probability is >= top_p (always at least one token).
 *     min-p (> 0): keep tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p).
 *     Temperature comes last, so top-p and min-p see the untempered distribution.
 *  4. q = softmax(logit / temperature) over the survivors; draw u uniform in [0, 1).
 *
 * Non-finite logits: NaN and -inf tokens are never candidates. If some logits are +inf, only
 * those tokens are candidates and they are equally likely. If no token is a candidate (all
 * NaN or -inf), the result is the greedy argmax over the non-NaN logits (so the lowest id
 * holding -inf), or 0 if every logit is NaN. Ids passed to sampler_accept outside [0, vocab)
 * are ignored.
 *
 * RNG: xoshiro256** (Blackman & Vigna), its state filled from the seed by splitmix64; a draw
 * uses the top 53 bits as a double in [0, 1). The same seed gives the same token sequence for
 * the same logits; sampler_reset reseeds and forgets the history.
 *
 * Cost: nothing is allocated per token and nothing is sorted. A step is a few O(vocab) passes:
 * the max; top-k with a k-heap over the row (quickselect for k > 4096); min-p as a logit
 * threshold; top-p over the whole row with a vectorised exp and a histogram of the tokens by
 * logit, ranking only the bucket the cut falls in; the draw with a vectorised exp and block
 * sums. At vocab 152k: ~0.1 ms for greedy, top-k or min-p, ~0.35 ms for top-p alone, ~1.3 ms
 * for top-p on a nearly flat row (tests/sampler/test_sampler_speed prints them).
 *
 * Reproducibility holds for the same build on the same machine; a build that fuses multiply-adds
 * (e.g. -march with FMA) may round a weight differently and, rarely, draw another token. */
#include "engine/sampler.h"

#include "base/error.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    BLOCK = 64,           /* elements per partial sum of a dense exp */
    BUCKETS_PER_NAT = 64, /* top-p histogram resolution in logit units */
    N_BUCKETS = 64 * 88,  /* weights below e^-86 are 0, so 88 nats cover every bucket */
};

typedef struct cand {
    float logit;
    float w; /* exp(logit - max): the untempered, unnormalised probability */
    int32_t id;
} cand;

struct sampler {
    cllm_sampling_params p;
    int vocab;
    uint64_t rng[4];
    cand *cand;   /* [vocab] the candidate set */
    float *w;     /* [vocab] dense weights */
    double *bsum; /* [vocab / BLOCK] block sums of w */
    double *hist; /* [N_BUCKETS] top-p weight per logit bucket, all zero between calls */

    /* History, only when penalties are on. counts[id] is how often id occurs in the window;
     * distinct[0..n_distinct) lists the ids with counts > 0 and where[id] is each one's index
     * there, so applying the penalties costs O(distinct tokens), not O(vocab). */
    int penalties;
    int32_t *counts;   /* [vocab] */
    int32_t *distinct; /* [vocab] */
    int32_t *where;    /* [vocab] */
    int n_distinct;
    int32_t *ring; /* [repeat_last_n] the window, oldest at ring_head once full; NULL for -1 */
    int ring_len, ring_head;
};

/* ---- RNG ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(sampler *s) {
    return (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53;
}

/* ---- lifecycle ---- */

static cllm_status validate(const cllm_sampling_params *p, int vocab) {
    if (vocab <= 0)
        return err_set(CLLM_ERR_INVALID_ARG, "sampler: vocab must be > 0, got %d", vocab);
    /* Any negative temperature, even -inf, just means greedy. */
    if (isnan(p->temperature) || p->temperature == INFINITY)
        return err_set(CLLM_ERR_INVALID_ARG, "sampling: temperature must be a number < inf, got %g",
                       p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return err_set(CLLM_ERR_INVALID_ARG, "sampling: top_p must be in (0, 1], got %g", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return err_set(CLLM_ERR_INVALID_ARG, "sampling: min_p must be in [0, 1], got %g", p->min_p);
    if (!(p->repeat_penalty > 0 && isfinite(p->repeat_penalty)))
        return err_set(CLLM_ERR_INVALID_ARG,
                       "sampling: repeat_penalty must be > 0 and finite, got %g",
                       p->repeat_penalty);
    /* OpenAI's range: negative values encourage repetition */
    if (!(p->presence_penalty >= -2 && p->presence_penalty <= 2))
        return err_set(CLLM_ERR_INVALID_ARG,
                       "sampling: presence_penalty must be in [-2, 2], got %g",
                       p->presence_penalty);
    if (!(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
        return err_set(CLLM_ERR_INVALID_ARG,
                       "sampling: frequency_penalty must be in [-2, 2], got %g",
                       p->frequency_penalty);
    if (p->repeat_last_n < -1)
        return err_set(CLLM_ERR_INVALID_ARG, "sampling: repeat_last_n must be >= -1, got %d",
                       p->repeat_last_n);
    return CLLM_OK;
}

cllm_status sampler_create(const cllm_sampling_params *p, int vocab, sampler **out) {
    if (!out) return err_set(CLLM_ERR_INVALID_ARG, "sampler_create: out is NULL");
    *out = NULL;
    if (!p) return err_set(CLLM_ERR_INVALID_ARG, "sampler_create: params are NULL");
    cllm_status st = validate(p, vocab);
    if (st) return st;

    sampler *s = calloc(1, sizeof *s);
    if (!s) return err_set(CLLM_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->vocab = vocab;
    /* Negative temperature (a NaN one was rejected above) means greedy, same as 0. */
    if (s->p.temperature < 0) s->p.temperature = 0;
    s->penalties = p->repeat_last_n != 0 && (p->repeat_penalty != 1 || p->presence_penalty != 0 ||
                                             p->frequency_penalty != 0);
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    s->w = malloc((size_t)vocab * sizeof *s->w);
    s->bsum = malloc(((size_t)vocab / BLOCK + 1) * sizeof *s->bsum);
    s->hist = calloc(N_BUCKETS, sizeof *s->hist);
    if (!s->cand || !s->w || !s->bsum || !s->hist) goto nomem;
    if (s->penalties) {
        s->counts = calloc((size_t)vocab, sizeof *s->counts);
        s->distinct = malloc((size_t)vocab * sizeof *s->distinct);
        s->where = malloc((size_t)vocab * sizeof *s->where);
        if (!s->counts || !s->distinct || !s->where) goto nomem;
        if (p->repeat_last_n > 0) {
            s->ring = malloc((size_t)p->repeat_last_n * sizeof *s->ring);
            if (!s->ring) goto nomem;
        }
    }
    sampler_reset(s);
    *out = s;
    return CLLM_OK;
nomem:
    sampler_free(s);
    return err_set(CLLM_ERR_NOMEM, "sampler: out of memory for vocab %d", vocab);
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->w);
    free(s->bsum);
    free(s->hist);
    free(s->counts);
    free(s->distinct);
    free(s->where);
    free(s->ring);
    free(s);
}

void sampler_reset(sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    if (s->penalties) {
        /* Clear only what is set: O(distinct), not O(vocab). */
        for (int i = 0; i < s->n_distinct; i++)
            s->counts[s->distinct[i]] = 0;
        s->n_distinct = 0;
        s->ring_len = s->ring_head = 0;
    }
}

/* ---- history and penalties ---- */

static void count_add(sampler *s, int32_t id) {
    if (s->counts[id]++ == 0) {
        s->where[id] = s->n_distinct;
        s->distinct[s->n_distinct++] = id;
    }
}

static void count_remove(sampler *s, int32_t id) {
    if (--s->counts[id] == 0) {
        int32_t last = s->distinct[--s->n_distinct];
        s->distinct[s->where[id]] = last;
        s->where[last] = s->where[id];
    }
}

void sampler_accept(sampler *s, int32_t id) {
    if (!s->penalties || id < 0 || id >= s->vocab) return;
    if (s->ring) {
        int cap = s->p.repeat_last_n;
        if (s->ring_len == cap)
            count_remove(s, s->ring[s->ring_head]);
        else
            s->ring_len++;
        s->ring[s->ring_head] = id;
        s->ring_head = (s->ring_head + 1) % cap;
    }
    count_add(s, id);
}

static void apply_penalties(const sampler *s, float *logits) {
    float rp = s->p.repeat_penalty, fp = s->p.frequency_penalty, pp = s->p.presence_penalty;
    for (int i = 0; i < s->n_distinct; i++) {
        int32_t id = s->distinct[i];
        float l = logits[id];
        l = l > 0 ? l / rp : l * rp;
        logits[id] = l - ((float)s->counts[id] * fp + pp);
    }
}

/* ---- candidate selection ---- */

/* The total order of step 3: a ranks before b. */
static int better(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void swap(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Partition c[lo, hi) around a median-of-three pivot: afterwards c[lo, m) rank before c[m] and
 * c(m, hi) after it. Returns m. */
static int partition(cand *c, int lo, int hi) {
    int mid = lo + (hi - lo) / 2, last = hi - 1;
    if (better(&c[mid], &c[lo])) swap(&c[mid], &c[lo]);
    if (better(&c[last], &c[lo])) swap(&c[last], &c[lo]);
    if (better(&c[mid], &c[last])) swap(&c[mid], &c[last]);
    /* c[last] is now the median of the three */
    int m = lo;
    for (int i = lo; i < last; i++)
        if (better(&c[i], &c[last])) swap(&c[i], &c[m++]);
    swap(&c[m], &c[last]);
    return m;
}

/* Sift c[i] down a heap whose root ranks last (the weakest of the kept k at the top). */
static void heap_sift(cand *c, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&c[w], &c[l])) w = l;
        if (r < n && better(&c[w], &c[r])) w = r;
        if (w == i) return;
        swap(&c[i], &c[w]);
        i = w;
    }
}

/* Move the k best of c[0, n) into c[0, k), in no particular order. */
static void select_top_k(cand *c, int n, int k) {
    if (k <= 256) {
        /* A k-heap touches each candidate once with one comparison against the weakest kept;
         * for random-order logits only about k*ln(n/k) of them enter the heap. */
        for (int i = k / 2 - 1; i >= 0; i--)
            heap_sift(c, k, i);
        for (int i = k; i < n; i++)
            if (better(&c[i], &c[0])) {
                c[0] = c[i];
                heap_sift(c, k, 0);
            }
        return;
    }
    int lo = 0, hi = n; /* invariant: c[0, lo) rank before c[lo, n), c[hi, n) after c[0, hi) */
    while (hi - lo > 1) {
        int m = partition(c, lo, hi);
        if (m == k) return;
        if (m < k)
            lo = m + 1;
        else
            hi = m;
    }
}

/* Reorder c[0, n) so that its shortest prefix in rank order whose weights sum to >= target
 * comes first, and return that prefix's length. The weights are summed while partitioning, so
 * this is a quickselect: O(n) expected and no sort. */
static int select_top_p(cand *c, int n, double target) {
    int lo = 0, hi = n;
    double acc = 0; /* weight of c[0, lo), all of which is in the prefix */
    while (lo < hi) {
        if (hi - lo == 1) return lo + 1;
        int m = partition(c, lo, hi);
        double before = 0;
        for (int i = lo; i < m; i++)
            before += c[i].w;
        if (acc + before >= target) {
            hi = m;
            continue;
        }
        acc += before + c[m].w;
        if (acc >= target) return m + 1;
        lo = m + 1;
    }
    return n; /* rounding left the total a hair under target: keep everything */
}

/* ---- dense exp and the draw ---- */

/* GNU vector extensions: four floats per operation on any target (SSE2 on x86-64) without
 * per-ISA builds. The whole-vocabulary exp is the one O(vocab) step that is not a simple
 * compare, and scalar expf makes it 0.5 ms at vocab 152k. */
typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));
typedef uint32_t u4 __attribute__((vector_size(16)));

/* exp(x) for x <= 0, about 1 ulp (Cephes expf: x = n ln2 + r, degree-6 polynomial in r, then
 * 2^n added to the exponent bits). x < -86 (weights below 4e-38), -inf and NaN give 0. */
static inline __attribute__((always_inline)) f4 exp4(f4 x) {
    const f4 lo = {-86.0f, -86.0f, -86.0f, -86.0f};
    /* Adding 1.5 * 2^23 rounds to an integer; the low mantissa bits then hold n. */
    const f4 magic = {12582912.0f, 12582912.0f, 12582912.0f, 12582912.0f};
    i4 ok = x >= lo;
    x = (f4)(((i4)x & ok) | ((i4)lo & ~ok)); /* keep NaN out of the arithmetic */
    f4 t = x * 1.44269504088896341f + magic;
    f4 n = t - magic;
    f4 r = x - n * 0.693359375f - n * -2.12194440e-4f; /* ln 2 split in two for exactness */
    f4 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    u4 e = ((u4)t - (u4)magic) << 23; /* unsigned: n < 0 wraps, as the exponent add needs */
    f4 res = (f4)((u4)p + e);
    return (f4)((i4)res & ok);
}

/* w[i] = exp((x[i] - max) / t) for i < n (x may equal w); NaN and -inf give 0. Stores the sum of
 * each BLOCK-element block in bsum, so a draw can skip whole blocks, and returns the total. */
static double exp_blocks(const float *x, float *w, int n, float max, float t, double *bsum) {
    /* Multiply by 1/t (a divide costs several times more), capped so that the max's 0 * 1/t
     * stays 0 rather than 0 * inf = NaN: temperatures below 1/FLT_MAX act as 1/FLT_MAX. */
    float inv = t > 1.0f / FLT_MAX ? 1.0f / t : FLT_MAX;
    double total = 0;
    for (int b = 0; b * BLOCK < n; b++) {
        int lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n;
        f4 acc = {0, 0, 0, 0};
        int i = lo;
        for (; i + 4 <= hi; i += 4) {
            f4 v;
            memcpy(&v, x + i, sizeof v); /* unaligned load */
            v = exp4((v - max) * inv);
            memcpy(w + i, &v, sizeof v);
            acc += v;
        }
        if (i < hi) { /* the last 1-3 elements, padded with -inf (weight 0) */
            f4 v = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
            for (int j = 0; j < hi - i; j++)
                v[j] = x[i + j];
            v = exp4((v - max) * inv);
            for (int j = 0; j < hi - i; j++)
                w[i + j] = v[j];
            acc += v;
        }
        bsum[b] = (double)acc[0] + acc[1] + acc[2] + acc[3];
        total += bsum[b];
    }
    return total;
}

/* Draw an index of x[0, n) with probability proportional to exp((x[i] - max) / t). max must
 * occur in x, so the total is >= 1 and some weight is positive. Overwrites s->w. */
static int draw(sampler *s, const float *x, int n, float max, float t) {
    float *w = s->w;
    double total = exp_blocks(x, w, n, max, t, s->bsum);
    double u = rng_uniform(s) * total, acc = 0;
    int b = 0, nb = (n + BLOCK - 1) / BLOCK;
    while (b < nb - 1 && u >= acc + s->bsum[b])
        acc += s->bsum[b++];
    int lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n, last = -1;
    for (int i = lo; i < hi; i++) {
        if (w[i] <= 0) continue;
        last = i;
        acc += w[i];
        if (u < acc) return i;
    }
    /* Rounding left u past the block's last weight: take that weight, or the last positive
     * one anywhere (the block may be empty only if u reached the very end). */
    for (int i = n - 1; last < 0 && i >= 0; i--)
        if (w[i] > 0) last = i;
    return last < 0 ? 0 : last;
}

/* ---- the pipeline ---- */

/* The largest non-NaN logit, -inf if none. Eight independent maxima break the dependency chain
 * of a single running max (4x faster at vocab 152k). */
static float max_of(const float *l, int n) {
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                  -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            m[j] = l[i + j] > m[j] ? l[i + j] : m[j]; /* NaN: false */
    for (; i < n; i++)
        m[0] = l[i] > m[0] ? l[i] : m[0];
    for (int j = 1; j < 8; j++)
        m[0] = m[j] > m[0] ? m[j] : m[0];
    return m[0];
}

/* Greedy: the lowest id holding max; with max = -inf (no candidate) the lowest non-NaN id, or 0
 * when every logit is NaN. */
static int32_t argmax(const float *l, int n, float max) {
    for (int i = 0; i < n; i++)
        if (l[i] == max) return i;
    return 0;
}

/* Copy the candidates (logit >= lmin, never NaN or -inf) into s->cand; returns how many. */
static int collect(sampler *s, const float *logits, float lmin) {
    cand *c = s->cand;
    int n = 0;
    for (int i = 0; i < s->vocab; i++) {
        float l = logits[i];
        if (l >= lmin && l > -INFINITY) c[n++] = (cand){.logit = l, .w = 0, .id = i};
    }
    return n;
}

/* top-k straight from the logits with a k-heap, skipping the copy of the whole row. Ids arrive in
 * ascending order, so a later token equal to the heap's weakest ranks after it. */
static int top_k_heap(sampler *s, const float *logits, float lmin, int k) {
    cand *c = s->cand;
    int n = 0, i = 0;
    for (; i < s->vocab && n < k; i++) {
        float l = logits[i];
        if (l >= lmin && l > -INFINITY) c[n++] = (cand){.logit = l, .w = 0, .id = i};
    }
    for (int j = n / 2 - 1; j >= 0; j--)
        heap_sift(c, n, j);
    for (; i < s->vocab; i++) {
        float l = logits[i]; /* NaN and anything below lmin (>= -inf) fail this test */
        if (l > c[0].logit && l >= lmin) {
            c[0] = (cand){.logit = l, .w = 0, .id = i};
            heap_sift(c, n, 0);
        }
    }
    return n;
}

static int bucket_of(float max, float l) {
    float d = (max - l) * (float)BUCKETS_PER_NAT;
    return d < (float)(N_BUCKETS - 1) ? (int)d : N_BUCKETS - 1;
}

/* top-p over the whole vocabulary without sorting it: exp the row once (for the normaliser),
 * then bucket the tokens by logit (1/64 nat wide) weighted by probability. The cut lies in one
 * bucket: everything in the buckets above it is kept and only that bucket is ranked. */
static int top_p_dense(sampler *s, const float *logits, float max) {
    int V = s->vocab;
    double z = exp_blocks(logits, s->w, V, max, 1.0f, s->bsum), target = s->p.top_p * z;
    /* A token with weight w < t0 = (1 - top_p) z / V is never kept: all such tokens together
     * weigh < (1 - top_p) z, so the tokens above t0 already reach top_p. This skips most of a
     * peaked row. The small margin covers exp4's rounding. */
    float lcut = max + (float)log((1.0 - s->p.top_p) * z / V) - 1e-3f;
    cand *c = s->cand;
    double *hist = s->hist;
    int m = 0, bmax = 0;
    for (int i = 0; i < V; i++) {
        float l = logits[i];
        if (!(l >= lcut)) continue;
        int b = bucket_of(max, l);
        hist[b] += s->w[i];
        if (b > bmax) bmax = b;
        c[m++] = (cand){.logit = l, .w = s->w[i], .id = i};
    }
    double above = 0; /* weight of the buckets before the cut one */
    int cut = -1;
    for (int b = 0; b <= bmax && cut < 0; b++) {
        if (above + hist[b] >= target)
            cut = b;
        else
            above += hist[b];
    }
    if (cut < 0) { /* rounding left the total a hair under target: keep everything */
        cut = bmax;
        above -= hist[bmax];
    }
    memset(hist, 0, (size_t)(bmax + 1) * sizeof *hist);
    /* Three-way partition by bucket: [0, lt) before the cut bucket, [lt, gt) in it. */
    int lt = 0, i = 0, gt = m;
    while (i < gt) {
        int b = bucket_of(max, c[i].logit);
        if (b < cut)
            swap(&c[lt++], &c[i++]);
        else if (b > cut)
            swap(&c[i], &c[--gt]);
        else
            i++;
    }
    return lt + select_top_p(c + lt, gt - lt, target - above);
}

int32_t sampler_sample(sampler *s, float *logits) {
    const cllm_sampling_params *p = &s->p;
    int V = s->vocab;
    if (s->penalties) apply_penalties(s, logits);
    float max = max_of(logits, V);
    if (p->temperature <= 0 || max == -INFINITY) return argmax(logits, V, max);

    int use_k = p->top_k > 0 && p->top_k < V;
    int use_p = p->top_p < 1;
    int use_min_p = p->min_p > 0;
    if (!use_k && !use_p && !use_min_p && max < INFINITY)
        return draw(s, logits, V, max, p->temperature);

    cand *c = s->cand;
    int n;
    if (max == INFINITY) {
        /* +inf tokens take all the mass: make them the only, equally likely, candidates. */
        n = collect(s, logits, INFINITY);
        for (int i = 0; i < n; i++)
            c[i].logit = 0;
        max = 0;
        if (use_k && p->top_k < n) {
            select_top_k(c, n, p->top_k);
            n = p->top_k;
        }
    } else if (use_p && !use_k) {
        n = top_p_dense(s, logits, max);
        use_p = 0;
    } else {
        /* Every filter keeps a prefix of the rank order and min-p's prefix depends only on the
         * max, so without top-p (whose sum must see the tokens min-p would drop) min-p can
         * filter here, before anything is copied. */
        float lmin = use_min_p && !use_p ? max + logf(p->min_p) : -INFINITY;
        if (!use_p) use_min_p = 0;
        if (use_k && p->top_k <= 4096) {
            n = top_k_heap(s, logits, lmin, p->top_k);
        } else {
            n = collect(s, logits, lmin);
            if (use_k && p->top_k < n) {
                select_top_k(c, n, p->top_k);
                n = p->top_k;
            }
        }
    }
    if (use_p) {
        double z = 0;
        for (int i = 0; i < n; i++) {
            c[i].w = expf(c[i].logit - max);
            z += c[i].w;
        }
        n = select_top_p(c, n, (double)p->top_p * z);
    }
    if (use_min_p) {
        float lmin = max + logf(p->min_p);
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (c[i].logit >= lmin) c[kept++] = c[i];
        n = kept;
    }

    /* The survivors' logits, packed for the vector exp; the max survives every filter, so n >= 1
     * (the check only guards against a bug here returning a stale id). */
    if (n <= 0) return argmax(logits, V, max);
    for (int i = 0; i < n; i++)
        s->w[i] = c[i].logit;
    return c[draw(s, s->w, n, max, p->temperature)].id;
}
