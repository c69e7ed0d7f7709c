/* matmul_amxbf16_amx.c - the AMX family for bf16 weights: AMX-BF16 tile dot products (TDPBF16PS)
 * over weights repacked at load into B-tile order (layout: quant_amx.h), x rounded to bf16 (round
 * to nearest even, the same bytes as the AVX512-BF16 family's preparation).
 *
 * Numerics: every output has one f32 accumulator in a C tile, zeroed, then updated by one
 * TDPBF16PS per chunk of 32 values in increasing K order (the instruction's own order of its 16
 * pair products, the same for every row of the tile), then stored and the bias added. Neither the
 * number of tokens in a tile, the tile's position nor the thread split changes that: a family of
 * its own (tune.h), with decode (one token) running the same tiles as prefill.
 *
 * Blocking: up to 2 token tiles (32 tokens) x 2 weight groups (32 outputs) = 4 C tiles, 2 A and
 * 2 B tiles; groups in L2-sized blocks that every token tile passes over. */
#include "kernels/matmul_impl.h"
#include "kernels/quant_amx.h"

#include "kernels/amx.h"

#include <string.h>

#define AI static inline __attribute__((always_inline))
#define BLOCK_BYTES (512 * 1024)

/* Tiles 0..3: C[mt][g] = 2 * mt + g; 4, 5: A (token tiles); 6, 7: B (groups). */
static void configure(int mr0, int mr1) {
    amx_tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    const int mr[2] = {mr0, mr1 ? mr1 : 1};
    for (int t = 0; t < 4; t++) {
        c.rows[t] = (uint8_t)mr[t / 2];
        c.colsb[t] = 64;
    }
    c.rows[4] = (uint8_t)mr[0];
    c.rows[5] = (uint8_t)mr[1];
    c.colsb[4] = c.colsb[5] = 64;
    c.rows[6] = c.rows[7] = 16;
    c.colsb[6] = c.colsb[7] = 64;
    _tile_loadconfig(&c);
}

/* y rows [m0, m0 + mr) of group g from a stored C tile; columns limited to [n0, n1). */
AI void store_c(const kern_mm_args *a, const float *c, int m0, int mr, int g, int n0, int n1) {
    const __mmask16 mk = amx_group_mask(g, n0, n1);
    if (!mk) return;
    const __m512 bias = a->bias ? _mm512_maskz_loadu_ps(mk, a->bias + g * 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++)
        _mm512_mask_storeu_ps(a->y + (size_t)(m0 + i) * a->ldy + g * 16, mk,
                              _mm512_add_ps(_mm512_load_ps(c + 16 * i), bias));
}

/* Token tiles at m0 (and m0 + 16 when two_m) x groups g (and g + 1 when two_g), over all K. */
AI void block(const kern_mm_args *a, const uint8_t *packed, int m0, int mr0, int mr1, int g, int n0,
              int n1, const int two_m, const int two_g) {
    const int nc = (a->K + 31) / 32;
    const size_t ld = (size_t)a->xp_ld * 2; /* bytes per bf16 x row */
    const uint16_t *x0 = (const uint16_t *)a->xp + (size_t)m0 * a->xp_ld;
    const uint16_t *x1 = x0 + (size_t)16 * a->xp_ld;
    const uint8_t *b0 = packed + (size_t)g * nc * 1024, *b1 = b0 + (size_t)nc * 1024;
    const size_t pf = (size_t)(a->pf_tiles > 0 ? a->pf_tiles : 1) * 4 * 1024;
    const int decode = mr0 < 4;
    _tile_zero(0);
    if (two_g) _tile_zero(1);
    if (two_m) _tile_zero(2);
    if (two_m && two_g) _tile_zero(3);
    for (int c = 0; c < nc; c++) {
        const uint8_t *r0 = b0 + (size_t)c * 1024, *r1 = b1 + (size_t)c * 1024;
        if (decode)
            for (int l = 0; l < 1024; l += 64) {
                _mm_prefetch((const char *)r0 + pf + l, _MM_HINT_T0);
                if (two_g) _mm_prefetch((const char *)r1 + pf + l, _MM_HINT_T0);
            }
        _tile_loadd(4, x0 + (size_t)c * 32, ld);
        _tile_loadd(6, r0, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (two_g) {
            _tile_loadd(7, r1, 64);
            _tile_dpbf16ps(1, 4, 7);
        }
        if (two_m) {
            _tile_loadd(5, x1 + (size_t)c * 32, ld);
            _tile_dpbf16ps(2, 5, 6);
            if (two_g) _tile_dpbf16ps(3, 5, 7);
        }
    }
    float c[256] __attribute__((aligned(64)));
    _tile_stored(0, c, 64);
    store_c(a, c, m0, mr0, g, n0, n1);
    if (two_g) {
        _tile_stored(1, c, 64);
        store_c(a, c, m0, mr0, g + 1, n0, n1);
    }
    if (two_m) {
        _tile_stored(2, c, 64);
        store_c(a, c, m0 + 16, mr1, g, n0, n1);
        if (two_g) {
            _tile_stored(3, c, 64);
            store_c(a, c, m0 + 16, mr1, g + 1, n0, n1);
        }
    }
}

typedef void (*block_fn)(const kern_mm_args *a, const uint8_t *p, int m0, int mr0, int mr1, int g,
                         int n0, int n1);
#define BLOCK_FN(tm, tg)                                                                           \
    static void block_##tm##tg(const kern_mm_args *a, const uint8_t *p, int m0, int mr0, int mr1,  \
                               int g, int n0, int n1) {                                            \
        block(a, p, m0, mr0, mr1, g, n0, n1, tm - 1, tg - 1);                                      \
    }
BLOCK_FN(1, 1)
BLOCK_FN(1, 2)
BLOCK_FN(2, 1)
BLOCK_FN(2, 2)
/* [two token tiles][two groups] */
static const block_fn blocks[2][2] = {{block_11, block_12}, {block_21, block_22}};

void kern_mm_rows_amxbf16(const kern_mm_args *a, const uint8_t *packed, int n0, int n1) {
    if (n0 >= n1) return;
    const int nc = (a->K + 31) / 32, g_end = (n1 + 15) / 16;
    int per_block = (int)(BLOCK_BYTES / ((size_t)nc * 1024));
    per_block = per_block < 2 ? 2 : per_block & ~1;
    int cfg0 = -1, cfg1 = -1;
    for (int gb = n0 / 16; gb < g_end; gb += per_block) {
        int gbe = gb + per_block < g_end ? gb + per_block : g_end;
        for (int m0 = 0; m0 < a->M; m0 += 32) {
            int mr0 = a->M - m0 < 16 ? a->M - m0 : 16;
            int mr1 = a->M - m0 - 16 <= 0 ? 0 : a->M - m0 - 16 < 16 ? a->M - m0 - 16 : 16;
            if (mr0 != cfg0 || mr1 != cfg1) {
                configure(mr0, mr1);
                cfg0 = mr0;
                cfg1 = mr1;
            }
            for (int g = gb; g < gbe; g += 2) {
                int two_g = g + 1 < gbe;
                blocks[mr1 > 0][two_g](a, packed, m0, mr0, mr1, g, n0, n1);
            }
        }
    }
    _tile_release();
}
