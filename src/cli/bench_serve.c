/* bench_serve.c - `cllm bench --serve`: offline serving throughput through the engine (like
 * vLLM's throughput benchmark): N requests of random token ids, EOS ignored, at most C in the
 * engine at a time; output tokens/s, requests/s, TTFT / TPOT percentiles, prefix-cache hits. */
#include "cli/cli.h"
#include "cli/engopts.h"

#include "base/clock.h"
#include "base/cpu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_serve_help =
    "usage: cllm bench --serve -m MODEL_DIR [options]\n"
    "\n"
    "Offline serving throughput: N requests of pseudo-random token ids (deterministic), EOS\n"
    "ignored, greedy sampling, run through the serving engine (continuous batching, paged KV,\n"
    "prefix cache) keeping at most C requests in the engine.\n"
    "\n"
    "  -m, --model DIR            model folder (a tokenizer is not needed)\n"
    "  --requests N               number of requests (default 64)\n"
    "  --prompt-len P             prompt tokens per request (default 128)\n"
    "  --gen-len G                output tokens per request (default 128)\n"
    "  --concurrency C            at most C requests in the engine at once; 0: submit all at\n"
    "                             once (default 32)\n"
    "  --request-rate R           requests arrive at R per second (Poisson arrivals, fixed\n"
    "                             seed; TTFT counts from the arrival); 0: no arrival times\n"
    "                             (default 0)\n"
    "  --shared-prefix L          all prompts start with the same L tokens (L <= P), then\n"
    "                             distinct ones (default 0)\n"
    "  --no-single                skip the single-stream comparison run\n"
    "  -h, --help                 this help\n"
    "%s"
    "\n"
    "Reports total output tokens/s, requests/s, prompt tokens submitted vs computed (prefix-\n"
    "cache hits), TTFT (submit to first token) and TPOT (time per output token after the first)\n"
    "mean/p50/p95/p99 in ms, peak KV blocks used, preemptions and, unless --no-single, the\n"
    "decode tokens/s of one request alone (same prompt and output lengths) for comparison.\n";

typedef struct serve_opts {
    const char *model;
    long requests, prompt_len, gen_len, concurrency, shared_prefix;
    eng_opts eng;
    double rate; /* requests per second; 0: none */
    bool single;
} serve_opts;

typedef struct req_state {
    cllm_request_id id;
    double t_submit, t_first, t_end;
    int n_gen, n_cached;
    bool done;
} req_state;

static uint64_t xorshift(uint64_t *x) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* linear interpolation between closest ranks (numpy's default); v sorted */
static double percentile(const double *v, int n, double p) {
    if (n <= 0) return 0;
    double r = p / 100.0 * (n - 1);
    int lo = (int)r;
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (r - lo) * (v[lo + 1] - v[lo]);
}

static void print_dist(const char *name, double *v, int n) {
    if (n <= 0) {
        printf("%-24s n/a\n", name);
        return;
    }
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    printf("%-24s mean %.2f  p50 %.2f  p95 %.2f  p99 %.2f\n", name, s / n * 1e3,
           percentile(v, n, 50) * 1e3, percentile(v, n, 95) * 1e3, percentile(v, n, 99) * 1e3);
}

static int find_req(const req_state *r, int n, cllm_request_id id) {
    /* ids are handed out in increasing order: binary search, then a linear fallback */
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (r[mid].id == id) return mid;
        if (r[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    for (int i = 0; i < n; i++)
        if (r[i].id == id) return i;
    return -1;
}

typedef struct run_result {
    double wall;
    int peak_blocks;
    cllm_engine_stats st;
} run_result;

/* Run n requests (prompts[i] of plen tokens) with at most conc in the engine (0: all). */
/* Arrival offsets (s) of a Poisson process of the given rate, from a fixed seed (splitmix64). */
static double next_arrival(uint64_t *state, double rate) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
    return -log(u) / rate;
}

static int run_requests(cllm_model *m, const cllm_engine_params *ep, int32_t *const *prompts, int n,
                        int plen, int glen, int conc, double rate, req_state *rs, run_result *res) {
    cllm_engine *e;
    if (cllm_engine_create(m, ep, &e)) return cli_fail("%s", cllm_last_error());
    memset(rs, 0, sizeof(req_state) * (size_t)n);
    memset(res, 0, sizeof *res);
    int submitted = 0, finished = 0, rc = 0;
    double t0 = clock_now(), arrival = 0; /* of the next request, from t0 */
    uint64_t seed = 42;
    while (finished < n) {
        if (rate > 0 && submitted < n && !cllm_engine_has_work(e)) {
            double wait = t0 + arrival - clock_now(); /* idle: sleep until the next arrival */
            if (wait > 0) clock_sleep(wait);
        }
        while (submitted < n && (conc <= 0 || submitted - finished < conc) &&
               (rate <= 0 || clock_now() >= t0 + arrival)) {
            cllm_request r = cllm_request_default();
            r.prompt = prompts[submitted];
            r.n_prompt = (size_t)plen;
            r.max_tokens = glen;
            r.ignore_eos = 1;
            rs[submitted].t_submit = rate > 0 ? t0 + arrival : clock_now();
            if (cllm_engine_submit(e, &r, &rs[submitted].id)) {
                rc = cli_fail("request %d: %s", submitted, cllm_last_error());
                goto out;
            }
            submitted++;
            if (rate > 0) arrival += next_arrival(&seed, rate);
        }
        const cllm_event *ev;
        size_t nev;
        if (cllm_engine_step(e, &ev, &nev)) {
            rc = cli_fail("%s", cllm_last_error());
            goto out;
        }
        double now = clock_now();
        cllm_engine_stats st;
        cllm_engine_get_stats(e, &st);
        if (st.kv_blocks_used > res->peak_blocks) res->peak_blocks = st.kv_blocks_used;
        for (size_t k = 0; k < nev; k++) {
            int i = find_req(rs, submitted, ev[k].id);
            if (i < 0 || rs[i].done) continue;
            if (ev[k].token >= 0) {
                if (rs[i].n_gen == 0) rs[i].t_first = now;
                rs[i].n_gen++;
            }
            rs[i].n_cached = ev[k].n_cached;
            if (ev[k].finished) {
                if (ev[k].finished != CLLM_REASON_LENGTH) {
                    rc = cli_fail("request %d finished early (reason %d)", i, (int)ev[k].finished);
                    goto out;
                }
                rs[i].t_end = now;
                rs[i].done = true;
                finished++;
            }
        }
        if (!cllm_engine_has_work(e) && finished < n && submitted == n) {
            rc = cli_fail("engine drained with %d of %d requests unfinished", n - finished, n);
            goto out;
        }
    }
    res->wall = clock_now() - t0;
    cllm_engine_get_stats(e, &res->st);
out:
    cllm_engine_free(e);
    return rc;
}

static bool parse_opts(int argc, char **argv, serve_opts *o, int *rc) {
    *rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r = eng_opts_parse(&o->eng, argc, argv, &i);
        if (r) {
            if (r < 0) return false;
            continue;
        }
        if (!strcmp(a, "--serve")) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_serve_help, k_eng_opts_help);
            *rc = 0;
            return false;
        }
        if (!strcmp(a, "--no-single")) {
            o->single = false;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return false;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--requests")) {
            if (!cli_int(a, v, 1, 1000000, &o->requests)) return false;
        } else if (!strcmp(a, "--prompt-len")) {
            if (!cli_int(a, v, 1, 1 << 20, &o->prompt_len)) return false;
        } else if (!strcmp(a, "--gen-len")) {
            if (!cli_int(a, v, 1, 1 << 20, &o->gen_len)) return false;
        } else if (!strcmp(a, "--concurrency")) {
            if (!cli_int(a, v, 0, 1000000, &o->concurrency)) return false;
        } else if (!strcmp(a, "--request-rate")) {
            if (!cli_float(a, v, 0, 1e6, &o->rate)) return false;
        } else if (!strcmp(a, "--shared-prefix")) {
            if (!cli_int(a, v, 0, 1 << 20, &o->shared_prefix)) return false;
        } else {
            cli_fail("bench --serve: unknown option '%s' (see cllm bench --serve --help)", a);
            return false;
        }
    }
    if (!o->model) {
        cli_fail("bench --serve: -m MODEL_DIR is required");
        return false;
    }
    if (o->shared_prefix > o->prompt_len) {
        cli_fail("bench --serve: --shared-prefix %ld exceeds --prompt-len %ld", o->shared_prefix,
                 o->prompt_len);
        return false;
    }
    *rc = 0;
    return true;
}

/* n + 1 prompts of plen tokens: the first `shared` from one stream, the rest (and all of the
 * single-stream prompt, index n) distinct. NULL on out of memory. */
static int32_t **make_prompts(int n, int plen, long shared, int vocab) {
    int32_t **prompts = calloc((size_t)n + 1, sizeof(int32_t *));
    uint64_t seed_shared = 0x9e3779b97f4a7c15ull;
    for (int i = 0; prompts && i <= n; i++) {
        if (!(prompts[i] = malloc(sizeof(int32_t) * (size_t)plen))) {
            for (int k = 0; k < i; k++)
                free(prompts[k]);
            free(prompts);
            return NULL;
        }
        uint64_t xs = seed_shared, xd = 0x2545f4914f6cdd1dull ^ ((uint64_t)(i + 1) * 0x9e3779b9ull);
        for (int k = 0; k < plen; k++) {
            uint64_t r = k < shared && i < n ? xorshift(&xs) : xorshift(&xd);
            prompts[i][k] = (int32_t)(r % (uint64_t)vocab);
        }
    }
    return prompts;
}

/* TTFT of every request and TPOT of those with more than one token (arrays of n); the TTFT p50
 * of the requests after the first (they may reuse its prefix). */
static bool latencies(const req_state *rs, int n, double *ttft, double *tpot, int *n_tpot,
                      double *later_p50) {
    *n_tpot = 0;
    *later_p50 = 0;
    for (int i = 0; i < n; i++) {
        ttft[i] = rs[i].t_first - rs[i].t_submit;
        if (rs[i].n_gen > 1) tpot[(*n_tpot)++] = (rs[i].t_end - rs[i].t_first) / (rs[i].n_gen - 1);
    }
    if (n < 2) return true;
    double *later = malloc(sizeof(double) * (size_t)(n - 1));
    if (!later) return cli_fail("out of memory"), false;
    memcpy(later, ttft + 1, sizeof(double) * (size_t)(n - 1));
    qsort(later, (size_t)n - 1, sizeof(double), cmp_double);
    *later_p50 = percentile(later, n - 1, 50);
    free(later);
    return true;
}

static void print_report(const serve_opts *o, const cllm_model_info *info, const run_result *res,
                         double *ttft, double *tpot, int n_tpot, double later_p50) {
    int n = (int)o->requests, plen = (int)o->prompt_len, glen = (int)o->gen_len;
    const cllm_engine_params *ep = &o->eng.ep;
    cllm_engine_params def = cllm_engine_default_params();
    const char *base = strrchr(o->model, '/');
    base = base && base[1] ? base + 1 : o->model;
    int64_t out_tokens = (int64_t)n * glen, submitted_prompt = (int64_t)n * plen;
    int64_t computed = res->st.prompt_tokens - res->st.prefix_hit_tokens;
    double ttft_first = ttft[0];
    printf("model:                   %s (%s, %.2f M params, CPU %s, %d threads)\n", base,
           info->weight_dtypes, info->n_params / 1e6, cpu_level_name(), o->eng.threads);
    printf("requests:                %d (prompt %d, output %d, shared prefix %ld, concurrency "
           "%ld",
           n, plen, glen, o->shared_prefix, o->concurrency);
    if (o->rate > 0)
        printf(", %.3g requests/s Poisson arrivals", o->rate);
    else
        printf(", all at once");
    printf(")\n");
    printf("engine:                  %d KV blocks of %d tokens, max seqs %d, max batched tokens "
           "%d, prefix cache %s\n",
           res->st.kv_blocks_total, res->st.block_size,
           ep->max_seqs > 0 ? ep->max_seqs : def.max_seqs,
           ep->max_batched_tokens > 0 ? ep->max_batched_tokens : def.max_batched_tokens,
           ep->no_prefix_cache ? "off" : "on");
    printf("wall time:               %.3f s (%lld steps)\n", res->wall, (long long)res->st.steps);
    printf("output tokens/s:         %.2f\n", out_tokens / res->wall);
    printf("total tokens/s:          %.2f (prompt + output)\n",
           (out_tokens + submitted_prompt) / res->wall);
    printf("requests/s:              %.3f\n", n / res->wall);
    printf("prompt tokens:           %lld submitted, %lld computed, %lld prefix-cache hits "
           "(%.1f%%)\n",
           (long long)submitted_prompt, (long long)computed, (long long)res->st.prefix_hit_tokens,
           res->st.prompt_tokens ? 100.0 * res->st.prefix_hit_tokens / res->st.prompt_tokens : 0.0);
    print_dist("TTFT ms:", ttft, n);
    if (n > 1)
        printf("TTFT first request ms:   %.2f (p50 of the later ones %.2f)\n", ttft_first * 1e3,
               later_p50 * 1e3);
    print_dist("TPOT ms:", tpot, n_tpot);
    printf("peak KV blocks used:     %d of %d\n", res->peak_blocks, res->st.kv_blocks_total);
    printf("preemptions:             %lld\n", (long long)res->st.preemptions);
    fflush(stdout);
}

/* One request alone (prefix cache off) for the decode-speed comparison. */
static bool single_stream(cllm_model *m, const serve_opts *o, const int32_t *prompt,
                          double batched_tps) {
    req_state s1;
    run_result r1;
    cllm_engine_params sep = o->eng.ep;
    sep.no_prefix_cache = 1;
    int32_t *const p[1] = {(int32_t *)prompt};
    int plen = (int)o->prompt_len, glen = (int)o->gen_len;
    if (run_requests(m, &sep, p, 1, plen, glen, 1, 0, &s1, &r1)) return false;
    double dec = s1.n_gen > 1 ? (s1.n_gen - 1) / (s1.t_end - s1.t_first) : 0;
    printf("single-stream decode:    %.2f tokens/s (one request, prompt %d, output %d)\n", dec,
           plen, glen);
    if (dec > 0) printf("batched / single:        %.2fx\n", batched_tps / dec);
    return true;
}

int cmd_bench_serve(int argc, char **argv) {
    serve_opts o = {
        .requests = 64, .prompt_len = 128, .gen_len = 128, .concurrency = 32, .single = true};
    eng_opts_init(&o.eng);
    int rc;
    if (!parse_opts(argc, argv, &o, &rc)) return rc;
    cllm_model_params mp = eng_opts_model_params(&o.eng);
    mp.skip_tokenizer = 1;
    cllm_model *m;
    if (cllm_model_load(o.model, &mp, &m)) return cli_fail("%s", cllm_last_error());
    cllm_model_info info;
    cllm_model_get_info(m, &info);
    rc = 1;
    int n = (int)o.requests, plen = (int)o.prompt_len, glen = (int)o.gen_len, n_tpot;
    int32_t **prompts = make_prompts(n, plen, o.shared_prefix, info.vocab_size);
    req_state *rs = calloc((size_t)n, sizeof(req_state)), w;
    double *ttft = calloc((size_t)n, sizeof(double)), *tpot = calloc((size_t)n, sizeof(double));
    double later_p50;
    run_result res, wr;
    if (!prompts || !rs || !ttft || !tpot) {
        cli_fail("out of memory");
        goto done;
    }
    /* warm-up: touch the weights once (one short request, not timed) */
    cllm_engine_params wep = o.eng.ep;
    wep.no_prefix_cache = 1;
    if (run_requests(m, &wep, &prompts[n], 1, plen < 8 ? plen : 8, 2, 1, 0, &w, &wr) ||
        run_requests(m, &o.eng.ep, prompts, n, plen, glen, (int)o.concurrency, o.rate, rs, &res) ||
        !latencies(rs, n, ttft, tpot, &n_tpot, &later_p50))
        goto done;
    print_report(&o, &info, &res, ttft, tpot, n_tpot, later_p50);
    if (o.single && !single_stream(m, &o, prompts[n], (double)n * glen / res.wall)) goto done;
    rc = 0;
done:
    for (int i = 0; prompts && i <= n; i++)
        free(prompts[i]);
    free(prompts);
    free(rs);
    free(ttft);
    free(tpot);
    cllm_model_free(m);
    return rc;
}
