/* bench_peak.c - the compute peak of this CPU core for the instructions cllm's matmul families
 * use, so that GEMM speeds (bench_matmul, bench_quant, cllm info --kernels) can be read as a
 * fraction of what the chosen instruction can do here:
 *   f32 FMA (avx2 ymm, avx512 zmm) - 2 FLOP per lane; vdpbf16ps zmm - 4 FLOP per f32 lane;
 *   vpdpbusd zmm - 8 int OPs per int32 lane; AMX tdpbssd 16x16x64 - 32768 int OPs per tile op;
 *   AMX tdpbf16ps 16x16x32 - 16384 FLOP per tile op.
 * Independent accumulator chains (enough to cover the latency), one thread, timed by the thread's
 * CPU clock (time stolen by other processes does not count).
 *
 * usage: bench_peak [-i ITERATIONS_IN_MILLIONS] */
#include "base/cpu.h"
#include "kernels/amx.h"

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CHAINS 12

__attribute__((target("avx2,fma"))) static double fma_ymm(long it) {
    __m256 a[CHAINS], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm256_set1_ps((float)i);
    double t0 = cpu_now();
    for (long n = 0; n < it; n++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm256_fmadd_ps(a[i], b, c);
    double dt = cpu_now() - t0;
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += a[i][0];
    if (s == 12345.0f) printf(" ");
    return (double)it * CHAINS * 8 * 2 / dt * 1e-9;
}

__attribute__((target("avx512f"))) static double fma_zmm(long it) {
    __m512 a[CHAINS], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm512_set1_ps((float)i);
    double t0 = cpu_now();
    for (long n = 0; n < it; n++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm512_fmadd_ps(a[i], b, c);
    double dt = cpu_now() - t0;
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += _mm512_reduce_add_ps(a[i]);
    if (s == 12345.0f) printf(" ");
    return (double)it * CHAINS * 16 * 2 / dt * 1e-9;
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16(long it) {
    __m512 a[CHAINS];
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm512_set1_ps((float)i);
    double t0 = cpu_now();
    for (long n = 0; n < it; n++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm512_dpbf16_ps(a[i], b, c);
    double dt = cpu_now() - t0;
    float s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += _mm512_reduce_add_ps(a[i]);
    if (s == 12345.0f) printf(" ");
    return (double)it * CHAINS * 16 * 4 / dt * 1e-9;
}

__attribute__((target("avx512f,avx512vnni"))) static double dpbusd(long it) {
    __m512i a[CHAINS], b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(5);
    for (int i = 0; i < CHAINS; i++)
        a[i] = _mm512_set1_epi32(i);
    double t0 = cpu_now();
    for (long n = 0; n < it; n++)
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS; i++)
            a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    double dt = cpu_now() - t0;
    int s = 0;
    for (int i = 0; i < CHAINS; i++)
        s += _mm512_reduce_add_epi32(a[i]);
    if (s == 12345) printf(" ");
    return (double)it * CHAINS * 16 * 8 / dt * 1e-9;
}

__attribute__((target("amx-tile,amx-int8"))) static double amx_int8(long it) {
    static int8_t a[16 * 64] __attribute__((aligned(64))), b[16 * 64] __attribute__((aligned(64)));
    static int32_t c[16 * 16] __attribute__((aligned(64)));
    memset(a, 1, sizeof a);
    memset(b, 2, sizeof b);
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 6; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, b, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    it /= 16; /* a tile op is ~16 cycles */
    double t0 = cpu_now();
    for (long n = 0; n < it; n++) {
        _tile_dpbssd(0, 4, 5);
        _tile_dpbssd(1, 4, 5);
        _tile_dpbssd(2, 4, 5);
        _tile_dpbssd(3, 4, 5);
    }
    double dt = cpu_now() - t0;
    _tile_stored(0, c, 64);
    _tile_release();
    if (c[0] == 12345) printf(" ");
    return (double)it * 4 * 16 * 16 * 64 * 2 / dt * 1e-9;
}

__attribute__((target("amx-tile,amx-bf16"))) static double amx_bf16(long it) {
    static uint16_t a[16 * 32] __attribute__((aligned(64))),
        b[16 * 32] __attribute__((aligned(64)));
    static float c[16 * 16] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++)
        a[i] = b[i] = 0x3f80; /* 1.0 */
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 6; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, b, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    it /= 16;
    double t0 = cpu_now();
    for (long n = 0; n < it; n++) {
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 5);
        _tile_dpbf16ps(2, 4, 5);
        _tile_dpbf16ps(3, 4, 5);
    }
    double dt = cpu_now() - t0;
    _tile_stored(0, c, 64);
    _tile_release();
    if (c[0] == 12345.0f) printf(" ");
    return (double)it * 4 * 16 * 16 * 32 * 2 / dt * 1e-9;
}

int main(int argc, char **argv) {
    long it = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-i") && i + 1 < argc) {
            it = atol(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_peak [-i ITERATIONS_IN_MILLIONS]\n");
            return 2;
        }
    }
    it *= 1000000 / CHAINS;
    const cpu_features *f = cpu_get();
    printf("compute peak of one core (CPU time), per instruction family:\n");
    if (f->avx2) printf("  f32 FMA ymm (avx2 family):        %7.1f GFLOP/s\n", fma_ymm(it));
    if (f->avx512f) printf("  f32 FMA zmm (avx512 family):      %7.1f GFLOP/s\n", fma_zmm(it));
    if (f->avx512bf16) printf("  vdpbf16ps zmm (avx512bf16):       %7.1f GFLOP/s\n", dpbf16(it));
    if (f->avx512vnni) printf("  vpdpbusd zmm (int8 VNNI):         %7.1f GOP/s\n", dpbusd(it));
    if (f->amx_int8) printf("  AMX tdpbssd (int8 tiles):         %7.1f GOP/s\n", amx_int8(it));
    if (f->amx_bf16) printf("  AMX tdpbf16ps (bf16 tiles):       %7.1f GFLOP/s\n", amx_bf16(it));
    return 0;
}
