/* serve.c - `cllm serve`: the OpenAI-compatible HTTP server over one serving engine. Listens
 * first (so /health can say "loading"), then loads the model, creates the engine and serves
 * until SIGINT/SIGTERM. */
#include "cli/cli.h"
#include "cli/engopts.h"

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
    "  --http-threads N           connection threads (default 4)\n"
    "  --max-body SIZE            largest request body (default 1MiB); larger gets 413\n"
    "  --max-queue N              requests waiting for the engine before 429 (default 256)\n"
    "  --read-timeout S           seconds a connection may idle while sending its request or\n"
    "                             between requests (default 30)\n"
    "  --write-timeout S          seconds a streaming client may take no bytes before its\n"
    "                             request is cancelled and the connection closed (default 60)\n"
    "  --max-buffered-output SIZE streamed output waiting for a client that does not read;\n"
    "                             past it the request is cancelled (default 1MiB)\n"
    "  --quiet                    no per-request log lines\n"
    "  -h, --help                 this help\n"
    "%s"
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

/* 1: parsed; 0: help printed; -1: error printed. */
static int parse_args(int argc, char **argv, srv_config *cfg, eng_opts *eo, const char **model) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long x;
        int r = eng_opts_parse(eo, argc, argv, &i);
        if (r) {
            if (r < 0) return -1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(k_serve_help, k_eng_opts_help);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            cfg->quiet = true;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return -1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            *model = v;
        } else if (!strcmp(a, "--host")) {
            cfg->host = v;
        } else if (!strcmp(a, "--port")) {
            if (!cli_int(a, v, 0, 65535, &x)) return -1;
            cfg->port = (int)x;
        } else if (!strcmp(a, "--api-key")) {
            cfg->api_key = v;
        } else if (!strcmp(a, "--served-model-name")) {
            cfg->model_name = v;
        } else if (!strcmp(a, "--http-threads")) {
            if (!cli_int(a, v, 1, 64, &x)) return -1;
            cfg->http_threads = (int)x;
        } else if (!strcmp(a, "--max-body")) {
            if (!cli_size(a, v, &cfg->max_body)) return -1;
        } else if (!strcmp(a, "--max-queue")) {
            if (!cli_int(a, v, 1, 1 << 20, &x)) return -1;
            cfg->max_queue = (int)x;
        } else if (!strcmp(a, "--read-timeout")) {
            if (!cli_int(a, v, 1, 86400, &x)) return -1;
            cfg->read_timeout = (int)x;
        } else if (!strcmp(a, "--write-timeout")) {
            if (!cli_int(a, v, 1, 86400, &x)) return -1;
            cfg->write_timeout = (int)x;
        } else if (!strcmp(a, "--max-buffered-output")) {
            if (!cli_size(a, v, &cfg->max_buffered)) return -1;
            if (cfg->max_buffered < 1)
                return cli_fail("--max-buffered-output: must be positive"), -1;
        } else {
            return cli_fail("serve: unknown option '%s' (see cllm serve --help)", a), -1;
        }
    }
    if (!*model) return cli_fail("serve: -m MODEL_DIR is required"), -1;
    cfg->max_model_len = eo->ep.max_model_len; /* the limits the server reports and shares */
    cfg->max_seqs = eo->ep.max_seqs;
    return 1;
}

static void install_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Load the model, create the engine and hand both to the (already listening) server. */
static bool start(srv_server *srv, const eng_opts *eo, const char *model, cllm_model **m,
                  cllm_engine **e) {
    cllm_model_params mp = eng_opts_model_params(eo);
    mp.require_tokenizer = 1;
    if (cllm_model_load(model, &mp, m) || cllm_engine_create(*m, &eo->ep, e) ||
        srv_attach(srv, *m, *e, model))
        return cli_fail("%s", cllm_last_error()), false;
    return true;
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL;
    srv_config cfg = {.host = "127.0.0.1",
                      .port = 8080,
                      .max_body = 1 << 20,
                      .max_queue = 256,
                      .http_threads = 4};
    eng_opts eo;
    eng_opts_init(&eo);
    int r = parse_args(argc, argv, &cfg, &eo, &model);
    if (r <= 0) return r < 0 ? 1 : 0;
    char *name = cfg.model_name ? NULL : base_name(model);
    if (!cfg.model_name) cfg.model_name = name;
    install_signals();
    int rc = 1;
    srv_server *srv = NULL;
    cllm_model *m = NULL;
    cllm_engine *e = NULL;
    if (srv_create(&cfg, &srv)) {
        rc = cli_fail("%s", cllm_last_error());
        goto out;
    }
    /* "listening" is said once the model serves: a load error must not follow it */
    fprintf(stderr, "cllm: loading %s (port %d answers 503 until ready)\n", model, srv_port(srv));
    if (!start(srv, &eo, model, &m, &e)) goto out;
    cllm_engine_stats st;
    cllm_engine_get_stats(e, &st);
    fprintf(stderr,
            "cllm: listening on http://%s%s%s:%d, serving '%s' (KV cache %d blocks x %d tokens); "
            "ready\n",
            strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "",
            srv_port(srv), cfg.model_name, st.kv_blocks_total, st.block_size);
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
