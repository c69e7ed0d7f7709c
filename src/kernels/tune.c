/* tune.c - the per-dtype kernel choice: defaults, CLLM_TUNE, the on-disk cache and the
 * calibration that times the candidates with the model's matrices (see tune.h). */
#include "kernels/tune.h"

#include "base/clock.h"
#include "base/cpu.h"
#include "base/error.h"
#include "kernels/matmul.h"
#include "kernels/quant_amx.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#ifndef CLLM_VERSION_STRING
#define CLLM_VERSION_STRING "dev"
#endif
/* Bump when a kernel changes speed enough that cached choices should be measured again. */
#define TUNE_REVISION 2 /* 2: AMX families */

#define GEMM_M 64                            /* the prefill shape class */
#define GEMV_SWEEP_BYTES ((size_t)192 << 20) /* weights per GEMV sweep: beyond the caches */
#define TIE_MARGIN 0.02                      /* the default (more exact) family wins within this */
#define GEMM_MAX_N 65536                     /* larger: an lm_head, never a prefill GEMM */

static const int g_pf_candidates[] = {1, 2, 4};
#define N_PF ((int)(sizeof g_pf_candidates / sizeof g_pf_candidates[0]))

/* Per dtype: the family and prefetch distance (read by every matmul), whether it is fixed for the
 * process, and how it was chosen. Written under g_mu before being fixed. */
static _Atomic int g_family[DTYPE_COUNT];
static _Atomic int g_pf[DTYPE_COUNT];
static _Atomic int g_fixed[DTYPE_COUNT];
static kern_tune_info g_info[DTYPE_COUNT];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static int default_pf(dtype wt) {
    return dtype_is_quant(wt) ? 2 : 1;
}

/* Fix wt's choice at the defaults unless it is fixed already. Caller holds g_mu. */
static void fix_default_locked(dtype wt) {
    if (atomic_load(&g_fixed[wt])) return;
    g_info[wt] = (kern_tune_info){.family = kern_mm_best_path(), .pf_tiles = default_pf(wt)};
    atomic_store(&g_family[wt], (int)g_info[wt].family);
    atomic_store(&g_pf[wt], g_info[wt].pf_tiles);
    atomic_store(&g_fixed[wt], 1);
}

kern_mm_path kern_tune_family(dtype wt) {
    if ((unsigned)wt >= DTYPE_COUNT) return kern_mm_best_path();
    if (!atomic_load_explicit(&g_fixed[wt], memory_order_acquire)) {
        pthread_mutex_lock(&g_mu);
        fix_default_locked(wt);
        pthread_mutex_unlock(&g_mu);
    }
    return (kern_mm_path)atomic_load_explicit(&g_family[wt], memory_order_relaxed);
}

int kern_tune_pf_tiles(dtype wt) {
    if ((unsigned)wt >= DTYPE_COUNT) return 1;
    int pf = atomic_load_explicit(&g_pf[wt], memory_order_relaxed);
    return pf > 0 ? pf : default_pf(wt);
}

void kern_tune_get(dtype wt, kern_tune_info *out) {
    pthread_mutex_lock(&g_mu);
    if ((unsigned)wt < DTYPE_COUNT) {
        fix_default_locked(wt);
        *out = g_info[wt];
    } else {
        memset(out, 0, sizeof *out);
    }
    pthread_mutex_unlock(&g_mu);
}

void kern_tune_reset(void) {
    for (int t = 0; t < DTYPE_COUNT; t++) {
        atomic_store(&g_fixed[t], 0);
        atomic_store(&g_pf[t], 0);
    }
}

const char *kern_tune_source_name(kern_tune_source s) {
    static const char *names[] = {"default", "forced", "cached", "measured"};
    return (unsigned)s < 4 ? names[s] : "?";
}

/* ------------------------------------------------------------------ CPU signature */

static char g_brand[64] = "unknown";
static uint64_t g_sig;
static pthread_once_t g_sig_once = PTHREAD_ONCE_INIT;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void read_signature(void) {
    uint64_t h = 0xcbf29ce484222325ull;
#if defined(__x86_64__) || defined(__i386__)
    unsigned r[4];
    if (__get_cpuid(0, &r[0], &r[1], &r[2], &r[3])) h = fnv(h, r, sizeof r); /* vendor, max leaf */
    if (__get_cpuid(1, &r[0], &r[1], &r[2], &r[3])) h = fnv(h, r, 4);        /* family/model/step */
    unsigned br[12] = {0};
    if (__get_cpuid(0x80000000, &r[0], &r[1], &r[2], &r[3]) && r[0] >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &br[4 * i], &br[4 * i + 1], &br[4 * i + 2], &br[4 * i + 3]);
        char s[49];
        memcpy(s, br, 48);
        s[48] = 0;
        const char *p = s;
        while (*p == ' ')
            p++;
        if (*p) snprintf(g_brand, sizeof g_brand, "%s", p);
    }
#endif
    h = fnv(h, g_brand, strlen(g_brand));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    h = fnv(h, &cores, sizeof cores);
    h = fnv(h, CLLM_VERSION_STRING, strlen(CLLM_VERSION_STRING));
    int rev = TUNE_REVISION;
    h = fnv(h, &rev, sizeof rev);
    const char *mask = getenv("CLLM_CPU");
    if (mask) h = fnv(h, mask, strlen(mask));
    g_sig = h;
}

const char *kern_cpu_model(void) {
    pthread_once(&g_sig_once, read_signature);
    return g_brand;
}

/* ------------------------------------------------------------------ CLLM_TUNE */

typedef enum { MODE_AUTO, MODE_OFF, MODE_FORCE, MODE_LIST } tune_mode;

static int family_from_name(const char *s, size_t n) {
    for (int p = 0; p < KERN_MM_NPATHS; p++) {
        const char *name = kern_mm_path_name((kern_mm_path)p);
        if (strlen(name) == n && strncmp(name, s, n) == 0) return p;
    }
    return -1;
}

static int dtype_from_name(const char *s, size_t n) {
    for (int t = 0; t < DTYPE_COUNT; t++) {
        const char *name = dtype_name((dtype)t);
        if (strlen(name) == n && strncmp(name, s, n) == 0) return t;
    }
    return -1;
}

/* Parse CLLM_TUNE: "", "on", "auto" | "off" | "force" | items DTYPE=FAMILY[/pfN] or *=FAMILY,
 * comma separated. For a list, fam[t] / pf[t] get the forced values (-1 / 0: not named). */
static cllm_status parse_env(tune_mode *mode, int fam[DTYPE_COUNT], int pf[DTYPE_COUNT]) {
    for (int t = 0; t < DTYPE_COUNT; t++) {
        fam[t] = -1;
        pf[t] = 0;
    }
    const char *e = getenv("CLLM_TUNE");
    *mode = MODE_AUTO;
    if (!e || !*e || strcmp(e, "on") == 0 || strcmp(e, "auto") == 0) return CLLM_OK;
    if (strcmp(e, "off") == 0) {
        *mode = MODE_OFF;
        return CLLM_OK;
    }
    if (strcmp(e, "force") == 0) {
        *mode = MODE_FORCE;
        return CLLM_OK;
    }
    *mode = MODE_LIST;
    const char *p = e;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq) goto bad;
        const char *slash = memchr(eq, '/', (size_t)(end - eq));
        const char *fam_end = slash ? slash : end;
        int all = eq - p == 1 && *p == '*';
        int t = all ? 0 : dtype_from_name(p, (size_t)(eq - p));
        int f = family_from_name(eq + 1, (size_t)(fam_end - eq - 1));
        int n = 0;
        if (t < 0 || f < 0) goto bad;
        if (slash) {
            if (end - slash < 4 || strncmp(slash, "/pf", 3) != 0) goto bad;
            for (const char *d = slash + 3; d < end; d++) {
                if (*d < '0' || *d > '9' || n > 8) goto bad;
                n = n * 10 + (*d - '0');
            }
            if (n < 1 || n > 8) goto bad;
        }
        if (!kern_mm_path_ok((kern_mm_path)f))
            return err_set(CLLM_ERR_INVALID_ARG,
                           "CLLM_TUNE: kernel family '%s' is not available on this CPU (%s)",
                           kern_mm_path_name((kern_mm_path)f), cpu_level_name());
        for (int d = all ? 0 : t; d < (all ? DTYPE_COUNT : t + 1); d++) {
            fam[d] = f;
            pf[d] = n;
        }
        p = *end ? end + 1 : end;
    }
    return CLLM_OK;
bad:
    return err_set(CLLM_ERR_INVALID_ARG,
                   "CLLM_TUNE='%s': expected off, force, or DTYPE=FAMILY[/pfN],... (DTYPE: f32, "
                   "bf16, q4_0, ... or *; FAMILY: scalar, avx2, avx512, avx512bf16; N: 1-8)",
                   e);
}

/* ------------------------------------------------------------------ cache file */

static int cache_path(char *buf, size_t n, int mkdirs) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/cllm", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/cllm", home);
    else
        return 0;
    if (mkdirs) {
        /* the parent (~/.cache) may not exist yet either */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            if (mkdir(parent, 0755) != 0 && errno != EEXIST) return 0;
        }
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return 0;
    }
    return snprintf(buf, n, "%s/kernels.txt", dir) < (int)n;
}

/* One line per (signature, threads, dtype):
 *   SIG THREADS DTYPE FAMILY PF GEMV_GBS GEMM_GFLOPS */
static int cache_lookup(int threads, dtype wt, kern_tune_info *out) {
    char path[4200], line[256];
    if (!cache_path(path, sizeof path, 0)) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long sig;
        int th, pf;
        char dt[16], fam[16];
        double gbs, gfl;
        if (sscanf(line, "%llx %d %15s %15s %d %lf %lf", &sig, &th, dt, fam, &pf, &gbs, &gfl) != 7)
            continue; /* malformed lines are ignored, never trusted */
        int f_id = family_from_name(fam, strlen(fam));
        if (sig != g_sig || th != threads || strcmp(dt, dtype_name(wt)) != 0 || f_id < 0 ||
            !kern_mm_path_ok((kern_mm_path)f_id) || pf < 1 || pf > 8)
            continue;
        *out = (kern_tune_info){.family = (kern_mm_path)f_id,
                                .pf_tiles = pf,
                                .source = KERN_TUNE_CACHED,
                                .threads = threads,
                                .gemv_gbs = gbs,
                                .gemm_gflops = gfl};
        found = 1; /* the last matching line wins */
    }
    fclose(f);
    return found;
}

/* Replace this key's line (write a temporary file, then rename: readers never see half a file).
 * The cache is an optimisation: any failure leaves it as it was. */
static void cache_store(int threads, dtype wt, const kern_tune_info *in) {
    char path[4200], tmp[4300], line[256];
    if (!cache_path(path, sizeof path, 1)) return;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) return;
    FILE *f = fopen(path, "r");
    int kept = 0;
    if (f) {
        while (fgets(line, sizeof line, f) && kept < 4096) {
            unsigned long long sig;
            int th;
            char dt[16];
            if (sscanf(line, "%llx %d %15s", &sig, &th, dt) != 3 || !strchr(line, '\n')) continue;
            if (sig == g_sig && th == threads && strcmp(dt, dtype_name(wt)) == 0) continue;
            fputs(line, out);
            kept++;
        }
        fclose(f);
    }
    fprintf(out, "%016llx %d %s %s %d %.2f %.2f\n", (unsigned long long)g_sig, threads,
            dtype_name(wt), kern_mm_path_name(in->family), in->pf_tiles, in->gemv_gbs,
            in->gemm_gflops);
    if (fclose(out) != 0 || rename(tmp, path) != 0) unlink(tmp);
}

/* ------------------------------------------------------------------ measurement */

typedef struct {
    threadpool *tp;
    const kern_tune_mat *mats;
    int n;
    dtype wt;
    float *x, *y;
    void *work;
    int maxK, maxN;
} bench_ctx;

/* Seconds for one GEMV sweep (M = 1) over the model's matrices of this dtype, up to
 * GEMV_SWEEP_BYTES; *bytes gets the weight bytes read. */
static double gemv_sweep(const bench_ctx *c, kern_mm_path fam, size_t *bytes) {
    size_t total = 0;
    double t0 = clock_now();
    for (int i = 0; i < c->n && total < GEMV_SWEEP_BYTES; i++) {
        const kern_tune_mat *m = &c->mats[i];
        if (m->wt != c->wt) continue;
        kern_matmul_on(fam, c->tp, c->x, 1, m->K, m->K, m->w, m->wt, m->N, NULL, c->y, m->N,
                       c->work);
        total += (size_t)m->N * dtype_row_bytes(m->wt, m->K);
    }
    *bytes = total;
    return clock_now() - t0;
}

static double gemm_once(const bench_ctx *c, kern_mm_path fam, const kern_tune_mat *m) {
    double t0 = clock_now();
    kern_matmul_on(fam, c->tp, c->x, GEMM_M, m->K, m->K, m->w, m->wt, m->N, NULL, c->y, m->N,
                   c->work);
    return clock_now() - t0;
}

/* Candidate families for wt on this CPU (the scalar path only where nothing else runs). */
static int candidates(dtype wt, int *out) {
    int n = 0;
    for (int p = KERN_MM_NPATHS - 1; p >= KERN_MM_AVX2; p--) {
        if (!kern_mm_path_ok((kern_mm_path)p)) continue;
        if (p == KERN_MM_AVX512BF16 && wt != DTYPE_BF16) continue; /* same kernels as avx512 */
        if (p == KERN_MM_AMX && !quant_amx_type(wt) && !(wt == DTYPE_BF16 && cpu_get()->amx_bf16))
            continue;
        out[n++] = p;
    }
    if (!n) out[n++] = KERN_MM_SCALAR;
    return n;
}

/* Does the family's GEMV honour pf_tiles? (AVX2 and scalar kernels do not prefetch.) */
static int family_prefetches(int fam) {
    return fam >= KERN_MM_AVX512;
}

static cllm_status measure(threadpool *tp, const kern_tune_mat *mats, int n, dtype wt,
                           kern_tune_info *out) {
    bench_ctx c = {.tp = tp, .mats = mats, .n = n, .wt = wt};
    /* The GEMM shape: the largest layer matrix of this dtype. A vocabulary-sized lm_head only
     * ever multiplies the rows that want logits (GEMV-like): a dtype used only there is chosen
     * by its GEMV alone. */
    const kern_tune_mat *big = NULL;
    size_t big_bytes = 0;
    int any = 0;
    for (int i = 0; i < n; i++) {
        if (mats[i].wt != wt) continue;
        any = 1;
        if (mats[i].K > c.maxK) c.maxK = mats[i].K;
        if (mats[i].N > c.maxN) c.maxN = mats[i].N;
        size_t b = (size_t)mats[i].N * dtype_row_bytes(wt, mats[i].K);
        if (mats[i].N <= GEMM_MAX_N && b > big_bytes) {
            big = &mats[i];
            big_bytes = b;
        }
    }
    if (!any) return CLLM_OK;
    int nth = tp ? tp_size(tp) : 1;
    size_t work = kern_matmul_work_size(GEMM_M, c.maxK, wt, nth);
    c.x = aligned_alloc(64, ((size_t)GEMM_M * c.maxK * 4 + 63) / 64 * 64);
    c.y = aligned_alloc(64, ((size_t)GEMM_M * c.maxN * 4 + 63) / 64 * 64);
    c.work = aligned_alloc(64, (work + 64 + 63) / 64 * 64);
    if (!c.x || !c.y || !c.work) {
        free(c.x);
        free(c.y);
        free(c.work);
        return err_set(CLLM_ERR_NOMEM, "out of memory for kernel calibration");
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)GEMM_M * c.maxK; i++) {
        s = s * 1664525u + 1013904223u;
        c.x[i] = (float)((int)(s >> 9) - (1 << 22)) * (1.0f / (1 << 22));
    }
    double t_start = clock_now();
    int fams[KERN_MM_NPATHS], nf = candidates(wt, fams);
    /* the AMX family reads repacked copies: make them for the matrices timed here (the model
     * registers all of them once AMX is chosen, and drops these otherwise) */
    for (int f = 0; f < nf; f++) {
        if (fams[f] != KERN_MM_AMX) continue;
        size_t total = 0;
        cllm_status st =
            big ? quant_amx_register_releasing(big->w, wt, big->N, big->K, 0, tp) : CLLM_OK;
        for (int i = 0; i < n && st == CLLM_OK && total < GEMV_SWEEP_BYTES; i++)
            if (mats[i].wt == wt) {
                st = quant_amx_register_releasing(mats[i].w, wt, mats[i].N, mats[i].K, 0, tp);
                total += (size_t)mats[i].N * dtype_row_bytes(wt, mats[i].K);
            }
        if (st != CLLM_OK) { /* no memory for the copies: AMX is not a candidate */
            fams[f] = fams[--nf];
            f--;
        }
    }
    double gemv[KERN_MM_NPATHS][N_PF], gemm[KERN_MM_NPATHS];
    size_t bytes = 0;
    for (int f = 0; f < nf; f++) {
        gemm[f] = 1e30;
        for (int q = 0; q < N_PF; q++)
            gemv[f][q] = 1e30;
    }
    /* Warm up once (page faults of freshly mapped weights, the pool's threads), then two rounds
     * with the candidates interleaved so that a noisy moment hurts all of them alike. */
    gemv_sweep(&c, (kern_mm_path)fams[0], &bytes);
    if (big) gemm_once(&c, (kern_mm_path)fams[0], big);
    for (int round = 0; round < 2; round++)
        for (int f = 0; f < nf; f++) {
            for (int q = 0; q < (family_prefetches(fams[f]) ? N_PF : 1); q++) {
                atomic_store(&g_pf[wt], g_pf_candidates[q]);
                double t = gemv_sweep(&c, (kern_mm_path)fams[f], &bytes);
                if (t < gemv[f][q]) gemv[f][q] = t;
            }
            atomic_store(&g_pf[wt], default_pf(wt));
            double t = big ? gemm_once(&c, (kern_mm_path)fams[f], big) : 1.0;
            if (t < gemm[f]) gemm[f] = t;
        }
    double best_v = 1e30, best_m = 1e30;
    int best_q[KERN_MM_NPATHS];
    for (int f = 0; f < nf; f++) {
        best_q[f] = 0;
        for (int q = 1; q < N_PF; q++)
            if (gemv[f][q] < gemv[f][best_q[f]]) best_q[f] = q;
        if (gemv[f][best_q[f]] < best_v) best_v = gemv[f][best_q[f]];
        if (gemm[f] < best_m) best_m = gemm[f];
    }
    int pick = -1;
    double pick_score = 1e30;
    for (int f = 0; f < nf; f++) {
        double score = gemv[f][best_q[f]] / best_v + gemm[f] / best_m;
        if (fams[f] == (int)kern_mm_best_path()) score -= 2 * TIE_MARGIN;
        if (score < pick_score) {
            pick_score = score;
            pick = f;
        }
    }
    *out = (kern_tune_info){
        .family = (kern_mm_path)fams[pick],
        .pf_tiles = family_prefetches(fams[pick]) ? g_pf_candidates[best_q[pick]] : default_pf(wt),
        .source = KERN_TUNE_MEASURED,
        .threads = nth,
        .gemv_gbs = (double)bytes / gemv[pick][best_q[pick]] * 1e-9,
        .gemm_gflops = big ? 2.0 * GEMM_M * big->N * big->K / gemm[pick] * 1e-9 : 0,
        .seconds = clock_now() - t_start};
    free(c.x);
    free(c.y);
    free(c.work);
    return CLLM_OK;
}

/* ------------------------------------------------------------------ kern_tune_model */

static void fix_locked(dtype wt, const kern_tune_info *in) {
    g_info[wt] = *in;
    atomic_store(&g_family[wt], (int)in->family);
    atomic_store(&g_pf[wt], in->pf_tiles);
    atomic_store(&g_fixed[wt], 1);
}

cllm_status kern_tune_model(threadpool *tp, const kern_tune_mat *mats, int n) {
    pthread_once(&g_sig_once, read_signature);
    tune_mode mode;
    int fam[DTYPE_COUNT], pf[DTYPE_COUNT];
    cllm_status st = parse_env(&mode, fam, pf);
    if (st != CLLM_OK) return st;
    int threads = tp ? tp_size(tp) : 1;
    pthread_mutex_lock(&g_mu);
    for (int t = 0; t < DTYPE_COUNT && st == CLLM_OK; t++) {
        int used = 0;
        for (int i = 0; i < n && !used; i++)
            used = mats[i].wt == (dtype)t && mats[i].w && mats[i].N > 0 && mats[i].K > 0;
        if (!used || atomic_load(&g_fixed[t])) continue;
        kern_tune_info info;
        if (mode == MODE_OFF || (mode == MODE_LIST && fam[t] < 0)) {
            fix_default_locked((dtype)t);
        } else if (mode == MODE_LIST) {
            info = (kern_tune_info){.family = (kern_mm_path)fam[t],
                                    .pf_tiles = pf[t] ? pf[t] : default_pf((dtype)t),
                                    .source = KERN_TUNE_FORCED};
            fix_locked((dtype)t, &info);
        } else if (mode == MODE_AUTO && cache_lookup(threads, (dtype)t, &info)) {
            fix_locked((dtype)t, &info);
        } else {
            st = measure(tp, mats, n, (dtype)t, &info);
            if (st == CLLM_OK) {
                fix_locked((dtype)t, &info);
                cache_store(threads, (dtype)t, &info);
            }
        }
    }
    pthread_mutex_unlock(&g_mu);
    return st;
}
