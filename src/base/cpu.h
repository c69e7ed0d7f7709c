/* cpu.h - the CPU-feature table (read once at startup) that kernels dispatch on. */
#ifndef CLLM_BASE_CPU_H
#define CLLM_BASE_CPU_H
#include <stdbool.h>

typedef struct cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512bf16, avx512vnni;
    bool amx_int8; /* AMX tiles + int8 dot products, enabled by the OS for this process */
    bool amx_bf16; /* ... and bf16 dot products */
} cpu_features;

/* Features of this CPU, masked by the CLLM_CPU environment variable: "scalar" disables all
 * SIMD paths, "avx2" disables AVX-512, "avx512" disables AVX512-BF16 and AMX (to test the
 * fallbacks on a bigger machine). AMX counts only if Linux grants this process the tile data
 * state (arch_prctl ARCH_REQ_XCOMP_PERM), which detection requests. */
const cpu_features *cpu_get(void);

/* Short human-readable name of the best path in use: "avx512bf16", "avx512", "avx2", "scalar". */
const char *cpu_level_name(void);

#endif
