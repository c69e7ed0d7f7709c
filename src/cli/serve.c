/* serve.c - `cllm serve`: the OpenAI-compatible HTTP server over one serving engine. Listens
 * first (so /health can say "loading"), then loads the model, creates the engine and serves
 * until SIGINT/SIGTERM. */
#include "cli/cli.h"

#include "server/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *k_serve_help =
    "usage: cllm serve -m MODEL_DIR [options]\n"
    "\n"
    "OpenAI-compatible HTTP server: POST /v1/chat/completions, /v1/completions (streaming with\n"
    "\"stream\": true), GET /v1/models, /health, /metrics (Prometheus), POST /tokenize,\n"
    "/detokenize. Every request shares one serving engine (continuous batching, paged KV cache\n"
    "with prefix caching). One log line per request on stderr.\n"
    "\n"
    "  -m, --model DIR            model folder (needs a tokenizer; chat needs a chat template)\n"
    "  --host ADDR                numeric address to bind (default 127.0.0.1)\n"
    "  --port N                   TCP port; 0 = any free one (default 8080)\n"
    "  --api-key KEY              require \"Authorization: Bearer KEY\" (all but /health)\n"
    "  --served-model-name NAME   the model id clients use (default: the folder's name)\n"
    "  -t, --threads N            compute threads (default: number of CPUs)\n"
    "  --http-threads N           connection threads (default 4)\n"
    "  --kv-memory SIZE           KV cache budget: BYTES, NKiB, NMiB, NGiB (default: 16384\n"
    "                             tokens)\n"
    "  --max-seqs N               running sequences per step (default 64)\n"
    "  --max-batched-tokens N     tokens per step (default 512)\n"
    "  --max-model-len N          tokens per request, prompt + output (default: the model's)\n"
    "  --kv-type f32|f16|bf16     KV cache element type (default: the model's dtype)\n"
    "  --no-prefix-cache          disable prefix caching\n"
    "  --max-body SIZE            largest request body (default 1MiB); larger gets 413\n"
    "  --max-queue N              requests waiting for the engine before 429 (default 256)\n"
    "  --quiet                    no per-request log lines\n"
    "  -h, --help                 this help\n"
    "\n"
    "Request extensions beyond OpenAI's: top_k, min_p, repetition_penalty, ignore_eos,\n"
    "min_tokens.\n";

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* The last path component of dir (its trailing slashes ignored), malloc'd. */
static char *base_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t a = n;
    while (a > 0 && dir[a - 1] != '/')
        a--;
    char *s = malloc(n - a + 1);
    if (s) {
        memcpy(s, dir + a, n - a);
        s[n - a] = 0;
    }
    return s;
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL;
    srv_config cfg = {.host = "127.0.0.1",
                      .port = 8080,
                      .max_body = 1 << 20,
                      .max_queue = 256,
                      .http_threads = 4};
    cllm_engine_params ep = cllm_engine_default_params();
    long threads = 0, x;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_serve_help, stdout);
            return 0;
        }
        if (!strcmp(a, "--no-prefix-cache")) {
            ep.no_prefix_cache = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            cfg.quiet = true;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model = v;
        } else if (!strcmp(a, "--host")) {
            cfg.host = v;
        } else if (!strcmp(a, "--port")) {
            if (!cli_int(a, v, 0, 65535, &x)) return 1;
            cfg.port = (int)x;
        } else if (!strcmp(a, "--api-key")) {
            cfg.api_key = v;
        } else if (!strcmp(a, "--served-model-name")) {
            cfg.model_name = v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_int(a, v, 1, 256, &threads)) return 1;
        } else if (!strcmp(a, "--http-threads")) {
            if (!cli_int(a, v, 1, 64, &x)) return 1;
            cfg.http_threads = (int)x;
        } else if (!strcmp(a, "--kv-memory")) {
            if (!cli_size(a, v, &ep.kv_memory)) return 1;
        } else if (!strcmp(a, "--max-seqs")) {
            if (!cli_int(a, v, 1, 65536, &x)) return 1;
            ep.max_seqs = (int)x;
        } else if (!strcmp(a, "--max-batched-tokens")) {
            if (!cli_int(a, v, 1, 65536, &x)) return 1;
            ep.max_batched_tokens = (int)x;
        } else if (!strcmp(a, "--max-model-len")) {
            if (!cli_int(a, v, 1, 1 << 24, &x)) return 1;
            ep.max_model_len = (int)x;
        } else if (!strcmp(a, "--kv-type")) {
            if (!strcmp(v, "f32"))
                ep.kv_type = CLLM_KV_F32;
            else if (!strcmp(v, "f16"))
                ep.kv_type = CLLM_KV_F16;
            else if (!strcmp(v, "bf16"))
                ep.kv_type = CLLM_KV_BF16;
            else
                return cli_fail("--kv-type: expected f32, f16 or bf16, got '%s'", v);
        } else if (!strcmp(a, "--max-body")) {
            if (!cli_size(a, v, &cfg.max_body)) return 1;
        } else if (!strcmp(a, "--max-queue")) {
            if (!cli_int(a, v, 1, 1 << 20, &x)) return 1;
            cfg.max_queue = (int)x;
        } else {
            return cli_fail("serve: unknown option '%s' (see cllm serve --help)", a);
        }
    }
    if (!model) return cli_fail("serve: -m MODEL_DIR is required");
    char *name = cfg.model_name ? NULL : base_name(model);
    if (!cfg.model_name) cfg.model_name = name;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    srv_server *srv = NULL;
    cllm_model *m = NULL;
    cllm_engine *e = NULL;
    if (srv_create(&cfg, &srv)) {
        rc = cli_fail("%s", cllm_last_error());
        goto out;
    }
    fprintf(stderr, "cllm: listening on http://%s%s%s:%d (loading %s)\n",
            strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "",
            srv_port(srv), model);
    cllm_model_params mp = cllm_model_default_params();
    mp.n_threads = (int)threads;
    mp.require_tokenizer = 1;
    if (cllm_model_load(model, &mp, &m) || cllm_engine_create(m, &ep, &e) ||
        srv_attach(srv, m, e, model)) {
        rc = cli_fail("%s", cllm_last_error());
        goto out;
    }
    cllm_engine_stats st;
    cllm_engine_get_stats(e, &st);
    fprintf(stderr, "cllm: serving '%s' (KV cache %d blocks x %d tokens); ready\n", cfg.model_name,
            st.kv_blocks_total, st.block_size);
    while (!g_stop) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "cllm: shutting down\n");
    rc = 0;
out:
    srv_free(srv); /* before the engine: it stops the engine thread and ends open requests */
    cllm_engine_free(e);
    cllm_model_free(m);
    free(name);
    return rc;
}
