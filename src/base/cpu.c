/* cpu.c - CPU feature detection (CPUID + XGETBV), masked by CLLM_CPU for testing fallbacks. */
#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static cpu_features g_cpu;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    memset(&g_cpu, 0, sizeof g_cpu);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = (c >> 27) & 1;
    if (!osxsave) return;
    unsigned long long xcr0 = xgetbv0();
    bool ymm_ok = (xcr0 & 0x6) == 0x6;
    bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
    g_cpu.fma = ymm_ok && ((c >> 12) & 1);
    g_cpu.f16c = ymm_ok && ((c >> 29) & 1);
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        g_cpu.avx2 = ymm_ok && ((b >> 5) & 1);
        g_cpu.avx512f = zmm_ok && ((b >> 16) & 1);
        g_cpu.avx512bw = zmm_ok && ((b >> 30) & 1);
        g_cpu.avx512vl = zmm_ok && ((b >> 31) & 1);
        g_cpu.avx512vnni = zmm_ok && ((c >> 11) & 1);
        /* AMX-TILE (edx 24) + AMX-INT8 (edx 25), tile config and data enabled in XCR0 (17, 18) */
        g_cpu.amx_int8 = zmm_ok && ((d >> 24) & 1) && ((d >> 25) & 1) && ((xcr0 >> 17) & 3) == 3;
        g_cpu.amx_bf16 = g_cpu.amx_int8 && ((d >> 22) & 1);
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) g_cpu.avx512bf16 = zmm_ok && ((a >> 5) & 1);
#endif
#if defined(__linux__) && defined(SYS_arch_prctl)
    /* Linux hands out the 8 KiB tile data state only on request (ARCH_REQ_XCOMP_PERM = 0x1023,
     * XFEATURE_XTILEDATA = 18); without it the first tile instruction would kill the process. */
    if (g_cpu.amx_int8 && syscall(SYS_arch_prctl, 0x1023, 18) != 0) g_cpu.amx_int8 = false;
#else
    g_cpu.amx_int8 = false;
#endif
    if (!g_cpu.amx_int8) g_cpu.amx_bf16 = false;
    const char *mask = getenv("CLLM_CPU");
    if (mask && strcmp(mask, "scalar") == 0) {
        memset(&g_cpu, 0, sizeof g_cpu);
    } else if (mask && strcmp(mask, "avx2") == 0) {
        g_cpu.avx512f = g_cpu.avx512bw = g_cpu.avx512vl = false;
        g_cpu.avx512bf16 = g_cpu.avx512vnni = g_cpu.amx_int8 = g_cpu.amx_bf16 = false;
    } else if (mask && strcmp(mask, "avx512") == 0) {
        g_cpu.avx512bf16 = g_cpu.amx_int8 = g_cpu.amx_bf16 = false;
    }
    /* our AVX2 kernels also need FMA and F16C; treat them as one level */
    if (!(g_cpu.fma && g_cpu.f16c)) g_cpu.avx2 = false;
    if (!(g_cpu.avx2 && g_cpu.avx512bw && g_cpu.avx512vl)) g_cpu.avx512f = false;
    if (!g_cpu.avx512f) g_cpu.avx512bf16 = g_cpu.avx512vnni = false;
    if (!g_cpu.avx512vnni) g_cpu.amx_int8 = false;
    if (!g_cpu.avx512bf16 || !g_cpu.amx_int8) g_cpu.amx_bf16 = false;
}

const cpu_features *cpu_get(void) {
    pthread_once(&g_once, detect);
    return &g_cpu;
}

const char *cpu_level_name(void) {
    const cpu_features *f = cpu_get();
    if (f->avx512bf16) return "avx512bf16";
    if (f->avx512f) return "avx512";
    if (f->avx2) return "avx2";
    return "scalar";
}
