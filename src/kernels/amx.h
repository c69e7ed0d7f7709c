/* amx.h - what the AMX kernels (*_amx.c) share: the tile configuration record of LDTILECFG
 * (palette 1: up to 8 tiles of at most 16 rows x 64 bytes) and the masked store of a 16-column
 * group of outputs. Included only by files compiled for AMX. */
#ifndef CLLM_KERNELS_AMX_H
#define CLLM_KERNELS_AMX_H

#include <immintrin.h>
#include <stdint.h>

typedef struct amx_tile_config {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed, aligned(64))) amx_tile_config;

/* The mask of the columns of 16-column group g that lie in [n0, n1). */
static inline __mmask16 amx_group_mask(int g, int n0, int n1) {
    int lo = n0 - g * 16, hi = n1 - g * 16;
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

#endif
