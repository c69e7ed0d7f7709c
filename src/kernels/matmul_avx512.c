/* matmul_avx512.c - AVX-512 matmul: register tiles of MR tokens x NR weight rows over the whole K,
 * for f32, f16 and bf16 weights (bf16 widened to f32 in registers, f32 FMA).
 *
 * Why f32 FMA and not _mm512_dpbf16_ps for bf16: on the machines we measured (Sapphire Rapids
 * class) vdpbf16ps retires 0.5/cycle = 32 flop/cycle, while two FMA ports give 64 flop/cycle;
 * widening bf16 costs one shift or AND per 16 elements, amortised over the tile's MR tokens.
 * It also keeps x in f32 (no rounding of activations to bf16). For M >= SMALL_M even that cost
 * is taken out of the tile loop: each L2 block of weight rows is widened once per call into
 * per-thread scratch, in the very lane layout the registers would hold (tile_wide), which made
 * the layer set ~5-9% faster (gate/up shapes most).
 *
 * Reduction order (batch invariance): every output element has one 16-lane accumulator that sees
 * the K chunks in increasing order (for bf16: per 32-chunk, the 16 even-indexed elements' FMA then
 * the 16 odd-indexed ones), the tail chunk is masked, then the 16 lanes are summed by one fixed
 * tree (reduce16) and the bias is added. Tile shape, M and threads never change that. */
#include "kernels/matmul_avx512.h"

#include <string.h>

/* The GEMM register tile: MR tokens x NR weight rows = 24 zmm accumulators, + 6 for the widened
 * weights (even/odd) + 1 for x. Chosen by measurement (bench_matmul). */
#define MR 8
#define NR 3
/* The decode tile (few tokens): more weight rows in flight for memory-level parallelism. */
#define NR1 8
/* The tile over pre-widened bf16 weights (see tile_wide). */
#define MRW 8
#define NRW 3
_Static_assert((MR * NR) <= ACC_MAX && MRW * NRW <= ACC_MAX, "accumulator budget");
_Static_assert(NR1 <= ACC_MAX, "the tile's accumulator array also serves the decode tile");
_Static_assert(NRW <= KERN_MM_WBLOCK_MIN_ROWS, "a widened block holds at least one tile");
_Static_assert(MRW <= KERN_MM_WIDE_MR_MAX, "room for the parked partial sums");
/* Longer rows are swept in K slices of this many elements so that the token tile's x slice
 * (MRW rows) stays in L1 while every weight tile of the block passes over it; the partial sums
 * are parked in memory between slices (exact: the per-lane order of additions is unchanged). */
#define KC_MAX 1024
#define KC 1024
/* Weight rows per L2 block: the block is reused from L2 by every token tile. */
#define BLOCK_BYTES (512 * 1024)
/* Rows longer than KC_MAX (the MLP's down projection) with at most this many tokens use the
 * direct tiles (bf16 widened in registers) rather than widened blocks: measured 20-30% faster
 * there at M = 16..64 (bench_matmul -s -c), where a widened block is reused by few token tiles
 * and the K slices' parked partial sums cost more than the in-register widening. Both tile kinds
 * reduce in the same order, so the choice never changes a result. */
#define DIRECT_LONG_K_MAX_M 64
/* Below this many tokens, W is streamed once per token by the decode tile (it stays in L1/L2). */
#define SMALL_M KERN_MM_GEMM_MIN_M

/* ------------------------------------------------------------------ the tile */

/* One 32-element K chunk of a bf16 tile; x is the prepared (de-interleaved) layout. */
AI void step_bf16(__m512 *acc, const uint16_t *w, const float *x, int K, int ldx, int k,
                  const int mr, const int nr, const int full, const int pf, size_t pfd) {
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __mmask32 mk = full ? ~(__mmask32)0 : (__mmask32)((1ull << (K - k)) - 1);
    __m512 we[8], wo[8];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        const uint16_t *p = w + (size_t)j * K + k;
        __m512i r = full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(mk, p);
        if (pf) _mm_prefetch((const char *)(p + pfd), _MM_HINT_T0);
        we[j] = _mm512_castsi512_ps(_mm512_slli_epi32(r, 16));
        wo[j] = _mm512_castsi512_ps(_mm512_and_si512(r, hi));
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        __m512 xe = _mm512_load_ps(x + (size_t)i * ldx + k);
        KEEP_IN_REG(xe);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm512_fmadd_ps(we[j], xe, acc[i * nr + j]);
        __m512 xo = _mm512_load_ps(x + (size_t)i * ldx + k + 16);
        KEEP_IN_REG(xo);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm512_fmadd_ps(wo[j], xo, acc[i * nr + j]);
    }
}

/* One 16-element K chunk of an f32 or f16 tile; x is used in place. */
AI void step_f(__m512 *acc, const void *w, const float *x, int K, int ldx, int k, const int mr,
               const int nr, const dtype wt, const int full, const int pf, size_t pfd) {
    __mmask16 mk = full ? (__mmask16)0xffff : tail16(K - k);
    __m512 wv[8];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        if (wt == DTYPE_F16) {
            const uint16_t *p = (const uint16_t *)w + (size_t)j * K + k;
            __m256i h =
                full ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16(mk, p);
            if (pf) _mm_prefetch((const char *)(p + pfd), _MM_HINT_T0);
            wv[j] = _mm512_cvtph_ps(h);
        } else {
            const float *p = (const float *)w + (size_t)j * K + k;
            wv[j] = full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mk, p);
            if (pf) _mm_prefetch((const char *)(p + pfd), _MM_HINT_T0);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        const float *xi = x + (size_t)i * ldx + k;
        __m512 xv = full ? _mm512_loadu_ps(xi) : _mm512_maskz_loadu_ps(mk, xi);
        KEEP_IN_REG(xv);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm512_fmadd_ps(wv[j], xv, acc[i * nr + j]);
    }
}

/* One tile over the full K. mr, nr and wt are compile-time constants in every instantiation.
 * pf: prefetch the weight rows a->pf_tiles tiles ahead (decode: W comes from DRAM, not from a
 * reused block; the distance is a tuned variant, see tune.h). */
AI void tile(const kern_mm_args *a, int m0, int n0, const int mr, const int nr, const dtype wt,
             const int pf) {
    __m512 acc[ACC_MAX];
    const int K = a->K;
    const size_t pfd = (size_t)(a->pf_tiles > 0 ? a->pf_tiles : 1) * nr * K; /* elements */
    for (int q = 0; q < mr * nr; q++)
        acc[q] = _mm512_setzero_ps();
    int k = 0;
    if (wt == DTYPE_BF16) {
        const uint16_t *w = (const uint16_t *)a->w + (size_t)n0 * K;
        const float *x = a->xp + (size_t)m0 * a->xp_ld;
        for (; k + 32 <= K; k += 32)
            step_bf16(acc, w, x, K, a->xp_ld, k, mr, nr, 1, pf, pfd);
        if (k < K) step_bf16(acc, w, x, K, a->xp_ld, k, mr, nr, 0, pf, pfd);
    } else {
        const void *w = (const char *)a->w + (size_t)n0 * K * dtype_size(wt);
        const float *x = a->x + (size_t)m0 * a->ldx;
        for (; k + 16 <= K; k += 16)
            step_f(acc, w, x, K, a->ldx, k, mr, nr, wt, 1, pf, pfd);
        if (k < K) step_f(acc, w, x, K, a->ldx, k, mr, nr, wt, 0, pf, pfd);
    }
    finish(a, acc, m0, n0, mr, nr);
}

/* Widen bf16 weight rows [n0, n1) into dst, xp_ld floats per row, in the lane layout step_bf16
 * produces in registers (per 32-chunk: 16 even-indexed elements, then 16 odd-indexed ones; zeros
 * past K, as its masked tail load gives). bf16 -> f32 is exact, so the products are the same. */
static void widen_rows(const kern_mm_args *a, int n0, int n1, float *dst) {
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    const int K = a->K, ld = a->xp_ld;
    for (int n = n0; n < n1; n++) {
        const uint16_t *p = (const uint16_t *)a->w + (size_t)n * K;
        float *d = dst + (size_t)(n - n0) * ld;
        for (int k = 0; k < ld; k += 32) {
            __m512i r = K - k >= 32
                            ? _mm512_loadu_si512(p + k)
                            : _mm512_maskz_loadu_epi16((__mmask32)((1ull << (K - k)) - 1), p + k);
            _mm512_store_si512(d + k, _mm512_slli_epi32(r, 16));
            _mm512_store_si512(d + k + 16, _mm512_and_si512(r, hi));
        }
    }
}

/* One 32-element chunk over widened weights w (row stride ld, as x): every accumulator gets the
 * even-lane FMA then the odd-lane one, exactly as in step_bf16. */
AI void step_wide(__m512 *acc, const float *w, const float *x, int ld, int k, const int mr,
                  const int nr) {
    __m512 we[8], wo[8];
#pragma GCC unroll 8
    for (int j = 0; j < nr; j++) {
        we[j] = _mm512_load_ps(w + (size_t)j * ld + k);
        KEEP_IN_REG(we[j]);
        wo[j] = _mm512_load_ps(w + (size_t)j * ld + k + 16);
        KEEP_IN_REG(wo[j]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        __m512 xe = _mm512_load_ps(x + (size_t)i * ld + k);
        KEEP_IN_REG(xe);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm512_fmadd_ps(we[j], xe, acc[i * nr + j]);
        __m512 xo = _mm512_load_ps(x + (size_t)i * ld + k + 16);
        KEEP_IN_REG(xo);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++)
            acc[i * nr + j] = _mm512_fmadd_ps(wo[j], xo, acc[i * nr + j]);
    }
}

/* K slice [k0, k1) of a bf16 tile whose nr weight rows (output columns n0..) were widened to wb;
 * partial sums come from / go to park unless the slice starts at 0 / ends the row. */
AI void tile_wide(const kern_mm_args *a, const float *wb, int m0, int n0, int k0, int k1,
                  __m512 *park, const int mr, const int nr) {
    __m512 acc[ACC_MAX];
    for (int q = 0; q < mr * nr; q++)
        acc[q] = k0 ? park[q] : _mm512_setzero_ps();
    const float *x = a->xp + (size_t)m0 * a->xp_ld;
    for (int k = k0; k < k1; k += 32)
        step_wide(acc, wb, x, a->xp_ld, k, mr, nr);
    if (k1 < a->xp_ld)
        for (int q = 0; q < mr * nr; q++)
            park[q] = acc[q];
    else
        finish(a, acc, m0, n0, mr, nr);
}

/* ------------------------------------------------------------------ instantiations */

typedef kern_tile_fn tile_fn;

#define T(dt, DT, mr, nr)                                                                          \
    static void tile_##dt##_##mr##x##nr(const kern_mm_args *a, int m0, int n0) {                   \
        tile(a, m0, n0, mr, nr, DT, 0);                                                            \
    }
#define TROW(dt, DT, mr) T(dt, DT, mr, 1) T(dt, DT, mr, 2) T(dt, DT, mr, 3)
#define TALL(dt, DT)                                                                               \
    TROW(dt, DT, 1)                                                                                \
    TROW(dt, DT, 2)                                                                                \
    TROW(dt, DT, 3) TROW(dt, DT, 4) TROW(dt, DT, 5) TROW(dt, DT, 6) TROW(dt, DT, 7) TROW(dt, DT, 8)
#define G(dt, DT, nr)                                                                              \
    static void gemv_##dt##_##nr(const kern_mm_args *a, int m0, int n0) {                          \
        tile(a, m0, n0, 1, nr, DT, 1);                                                             \
    }
#define GALL(dt, DT)                                                                               \
    G(dt, DT, 1)                                                                                   \
    G(dt, DT, 2) G(dt, DT, 3) G(dt, DT, 4) G(dt, DT, 5) G(dt, DT, 6) G(dt, DT, 7) G(dt, DT, 8)

TALL(f32, DTYPE_F32)
TALL(f16, DTYPE_F16)
TALL(bf16, DTYPE_BF16)
GALL(f32, DTYPE_F32)
GALL(f16, DTYPE_F16)
GALL(bf16, DTYPE_BF16)

#define TR(dt, mr)                                                                                 \
    { NULL, tile_##dt##_##mr##x1, tile_##dt##_##mr##x2, tile_##dt##_##mr##x3 }
#define TTAB(dt)                                                                                   \
    {                                                                                              \
        {NULL}, TR(dt, 1), TR(dt, 2), TR(dt, 3), TR(dt, 4), TR(dt, 5), TR(dt, 6), TR(dt, 7),       \
            TR(dt, 8)                                                                              \
    }
#define GTAB(dt)                                                                                   \
    {                                                                                              \
        NULL, gemv_##dt##_1, gemv_##dt##_2, gemv_##dt##_3, gemv_##dt##_4, gemv_##dt##_5,           \
            gemv_##dt##_6, gemv_##dt##_7, gemv_##dt##_8                                            \
    }

typedef void (*wide_fn)(const kern_mm_args *a, const float *wb, int m0, int n0, int k0, int k1,
                        __m512 *park);
#define W(mr, nr)                                                                                  \
    static void wide_##mr##x##nr(const kern_mm_args *a, const float *wb, int m0, int n0, int k0,   \
                                 int k1, __m512 *park) {                                           \
        tile_wide(a, wb, m0, n0, k0, k1, park, mr, nr);                                            \
    }
#define WROW(mr) W(mr, 1) W(mr, 2) W(mr, 3)
#define WALL() WROW(1) WROW(2) WROW(3) WROW(4) WROW(5) WROW(6) WROW(7) WROW(8)
WALL()
#define WR(mr)                                                                                     \
    { NULL, wide_##mr##x1, wide_##mr##x2, wide_##mr##x3 }

static const tile_fn tiles[3][MR + 1][NR + 1] = {TTAB(f32), TTAB(f16), TTAB(bf16)};
static const wide_fn wides[MRW + 1][NRW + 1] = {{NULL}, WR(1), WR(2), WR(3), WR(4),
                                                WR(5),  WR(6), WR(7), WR(8)};
static const tile_fn gemvs[3][NR1 + 1] = {GTAB(f32), GTAB(f16), GTAB(bf16)};

/* ------------------------------------------------------------------ drivers */

void kern_mm_rows_avx512(const kern_mm_args *a, int n0, int n1, float *wp, const char *pf_next,
                         size_t pf_next_bytes) {
    const int t = a->wt == DTYPE_F32 ? 0 : a->wt == DTYPE_F16 ? 1 : 2;
    if (a->M < SMALL_M) {
        kern_mm_sweep_gemv(a, n0, n1, NR1, gemvs[t]);
        return;
    }
    if (a->wt == DTYPE_BF16 && wp && !(a->K > KC_MAX && a->M <= DIRECT_LONG_K_MAX_M)) {
        const int ld = a->xp_ld, kc = ld > KC_MAX ? KC : ld;
        int nb_rows = (int)(kern_mm_wblock_floats(a->K) / (size_t)ld) / NRW * NRW;
        __m512 *park = (__m512 *)(wp + kern_mm_wblock_floats(a->K)); /* MRW vectors per row */
        for (int nb = n0; nb < n1; nb += nb_rows) {
            int nbe = n1 - nb < nb_rows ? n1 : nb + nb_rows;
            widen_rows(a, nb, nbe, wp);
            /* While this block is computed, pull the next block's bf16 rows from DRAM into L2,
             * spread evenly over the tile calls: otherwise the next widen_rows stalls on memory
             * with the FMA units idle (measured: ~13% of a 32-sequence decode step). */
            int nxe = n1 - nbe < nb_rows ? n1 : nbe + nb_rows;
            const char *pf = (const char *)((const uint16_t *)a->w + (size_t)nbe * a->K);
            const char *pf_end = pf + (size_t)(nxe - nbe) * a->K * sizeof(uint16_t);
            if (nxe == nbe && pf_next_bytes) { /* the last block: the next matmul's first */
                pf = pf_next;
                pf_end = pf_next + pf_next_bytes;
            }
            long calls = (long)((a->M + MRW - 1) / MRW) * ((ld + kc - 1) / kc) *
                         ((nbe - nb + NRW - 1) / NRW);
            long per = calls ? ((pf_end - pf) / 64 + calls - 1) / calls : 0;
            for (int m = 0; m < a->M; m += MRW) {
                int mr = a->M - m < MRW ? a->M - m : MRW;
                for (int k = 0; k < ld; k += kc) {
                    int ke = ld - k < kc ? ld : k + kc;
                    for (int n = nb; n < nbe; n += NRW) {
                        int nr = nbe - n < NRW ? nbe - n : NRW;
                        for (long q = 0; q < per && pf < pf_end; q++, pf += 64)
                            _mm_prefetch(pf, _MM_HINT_T1);
                        wides[mr][nr](a, wp + (size_t)(n - nb) * ld, m, n, k, ke,
                                      park + (size_t)(n - nb) * MRW);
                    }
                }
            }
        }
        return;
    }
    kern_mm_sweep_tiles(a, n0, n1, BLOCK_BYTES, MR, NR, &tiles[t][0][0]);
}

/* x rows -> per 32-chunk: 16 even-indexed then 16 odd-indexed values, zero padded to xp_ld. */
void kern_mm_prep_x_avx512(const kern_mm_args *a, int m0, int m1, float *xp) {
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const int K = a->K;
    for (int m = m0; m < m1; m++) {
        const float *x = a->x + (size_t)m * a->ldx;
        float *d = xp + (size_t)m * a->xp_ld;
        for (int k = 0; k < a->xp_ld; k += 32) {
            __m512 lo, hi;
            load_x32(x, K, k, &lo, &hi);
            _mm512_store_ps(d + k, _mm512_permutex2var_ps(lo, ie, hi));
            _mm512_store_ps(d + k + 16, _mm512_permutex2var_ps(lo, io, hi));
        }
    }
}
