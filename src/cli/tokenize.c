/* tokenize.c - `cllm tokenize` and `cllm detokenize`: run only the tokenizer of a model folder.
 *
 * The tokenizer is loaded with cllm_tokenizer_load, not cllm_model_load, so a folder that holds
 * just tokenizer.json (+ tokenizer_config.json) or vocab.json + merges.txt works. The --jsonl modes
 * batch many strings through one process; the differential test against a Hugging Face port
 * (tests/tokenizer_diff) relies on them. -m may also name a .gguf file: its vocabulary is used. */
#include "cli/cli.h"

#include "base/clock.h"
#include "base/mapfile.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_tokenize_help =
    "usage: cllm tokenize -m MODEL_DIR [options] TEXT\n"
    "       cllm tokenize -m MODEL_DIR [options] (-f FILE | --jsonl | --bench FILE)\n"
    "\n"
    "Prints one token per line: id, a tab, and the piece as stored in the vocabulary\n"
    "(e.g. \"9707\\tHello\", \"1879\\tĠworld\"). MODEL_DIR only needs the tokenizer files\n"
    "(tokenizer.json or vocab.json + merges.txt, and tokenizer_config.json when present).\n"
    "\n"
    "  -m, --model DIR       model or tokenizer folder, or a .gguf file (required)\n"
    "  -f, --file FILE       tokenize the contents of FILE instead of TEXT\n"
    "  -e, --escape          process \\n \\t \\r \\\\ \\\" escapes in TEXT\n"
    "  --ids-only            print only the ids, space-separated on one line\n"
    "  --no-special          do not add the post-processor's special tokens (BOS/EOS);\n"
    "                        HF add_special_tokens=False\n"
    "  --no-parse-special    special-token text in the input (e.g. <|im_start|>) is plain\n"
    "                        text, not the special token; HF split_special_tokens=True\n"
    "  --jsonl               read stdin: each line is one JSON string; print for each a JSON\n"
    "                        array of ids on one line (--no-special and --no-parse-special\n"
    "                        apply)\n"
    "  --bench FILE          encode FILE repeatedly on one thread for about a second and print\n"
    "                        the throughput in MB/s (1 MB = 10^6 bytes of input)\n"
    "  -h, --help            this help\n";

static const char *k_detokenize_help =
    "usage: cllm detokenize -m MODEL_DIR [options] ID...\n"
    "       cllm detokenize -m MODEL_DIR [options] --jsonl\n"
    "\n"
    "Prints the text of the token ids (space- or comma-separated), as Hugging Face\n"
    "tokenizer.decode() does (special tokens are kept unless --skip-special). No newline is\n"
    "added after the text.\n"
    "\n"
    "  -m, --model DIR       model or tokenizer folder, or a .gguf file (required)\n"
    "  --skip-special        drop special tokens; HF skip_special_tokens=True\n"
    "  --jsonl               read stdin: each line is a JSON array of ids; print for each the\n"
    "                        decoded text as a JSON string on one line\n"
    "  -h, --help            this help\n";

/* JSON string with only the escapes JSON requires; the decoder's output is valid UTF-8, so the
 * other bytes can go out as they are. */
static void put_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void put_ids(const int32_t *ids, size_t n, const char *sep) {
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? sep : "", ids[i]);
}

/* --jsonl: one JSON string in, one JSON array of ids out, per line. */
static int tokenize_jsonl(const cllm_tokenizer *t, bool add_special, bool parse_special) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t jerr;
        /* JSON_ALLOW_NUL: "\u0000" is a valid character for HF too. */
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j || !json_is_string(j)) {
            json_decref(j);
            rc = cli_fail("stdin line %ld: expected a JSON string%s%s", lineno, j ? "" : ": ",
                          j ? "" : jerr.text);
            break;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (cllm_tokenizer_encode(t, json_string_value(j), json_string_length(j), add_special,
                                  parse_special, &ids, &n) != CLLM_OK) {
            json_decref(j);
            rc = cli_fail("stdin line %ld: %s", lineno, cllm_last_error());
            break;
        }
        putchar('[');
        put_ids(ids, n, ",");
        fputs("]\n", stdout);
        free(ids);
        json_decref(j);
    }
    free(line);
    return rc;
}

static int tokenize_bench(const cllm_tokenizer *t, const char *path, bool add_special,
                          bool parse_special) {
    size_t len = 0;
    char *text = NULL;
    if (file_read_all(path, (size_t)1 << 30, &text, &len)) return cli_fail("%s", cllm_last_error());
    int32_t *ids = NULL;
    size_t n = 0;
    /* One untimed pass warms caches and the allocator (and catches invalid UTF-8). */
    if (cllm_tokenizer_encode(t, text, len, add_special, parse_special, &ids, &n) != CLLM_OK) {
        free(text);
        return cli_fail("%s: %s", path, cllm_last_error());
    }
    free(ids);
    int iters = 0;
    double t0 = clock_now(), el;
    do {
        cllm_tokenizer_encode(t, text, len, add_special, parse_special, &ids, &n);
        free(ids);
        iters++;
        el = clock_now() - t0;
    } while (el < 1.0);
    printf("cllm tokenize: %zu bytes -> %zu tokens, %d runs, %.3f s/run, %.2f MB/s\n", len, n,
           iters, el / iters, (double)len * iters / el / 1e6);
    free(text);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *bench = NULL, *text = NULL;
    bool escape = false, ids_only = false, add_special = true, parse_special = true, jsonl = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_tokenize_help, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "--bench")) {
            if (!(bench = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(a, "-e") || !strcmp(a, "--escape")) {
            escape = true;
        } else if (!strcmp(a, "--ids-only")) {
            ids_only = true;
        } else if (!strcmp(a, "--no-special")) {
            add_special = false;
        } else if (!strcmp(a, "--no-parse-special")) {
            parse_special = false;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = true;
        } else if (a[0] == '-' && a[1] && strcmp(a, "--")) {
            return cli_fail("tokenize: unknown option '%s' (see cllm tokenize --help)", a);
        } else {
            if (!strcmp(a, "--")) {
                if (++i >= argc) break;
                a = argv[i];
            }
            if (text) return cli_fail("tokenize: give the text as one argument (quote it)");
            text = a;
        }
    }
    if (!model) return cli_fail("tokenize: -m MODEL_DIR is required (see cllm tokenize --help)");
    if ((text != NULL) + (file != NULL) + jsonl + (bench != NULL) != 1)
        return cli_fail("tokenize: give exactly one of TEXT, -f FILE, --jsonl, --bench FILE");

    cllm_tokenizer *t = NULL;
    if (cllm_tokenizer_load(model, &t) != CLLM_OK) return cli_fail("%s", cllm_last_error());
    int rc = 0;
    if (jsonl) {
        rc = tokenize_jsonl(t, add_special, parse_special);
    } else if (bench) {
        rc = tokenize_bench(t, bench, add_special, parse_special);
    } else {
        char *buf = NULL;
        size_t len;
        if (file) {
            if (file_read_all(file, (size_t)1 << 30, &buf, &len)) {
                cllm_tokenizer_free(t);
                return cli_fail("%s", cllm_last_error());
            }
        } else {
            if (!(buf = strdup(text))) {
                cllm_tokenizer_free(t);
                return cli_fail("out of memory");
            }
            if (escape) cli_unescape(buf);
            len = strlen(buf);
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (cllm_tokenizer_encode(t, buf, len, add_special, parse_special, &ids, &n) != CLLM_OK) {
            rc = cli_fail("%s", cllm_last_error());
        } else if (ids_only) {
            put_ids(ids, n, " ");
            putchar('\n');
        } else {
            for (size_t k = 0; k < n; k++)
                printf("%d\t%s\n", ids[k], cllm_tokenizer_piece(t, ids[k]));
        }
        free(ids);
        free(buf);
    }
    cllm_tokenizer_free(t);
    if (fflush(stdout) != 0 && rc == 0) rc = cli_fail("cannot write to stdout");
    return rc;
}

/* --jsonl: one JSON array of ids in, one JSON string of text out, per line. */
static int detokenize_jsonl(const cllm_tokenizer *t, bool skip_special) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    int32_t *ids = NULL;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)got, 0, &jerr);
        if (!j || !json_is_array(j)) {
            json_decref(j);
            rc = cli_fail("stdin line %ld: expected a JSON array of ids", lineno);
            break;
        }
        size_t n = json_array_size(j);
        int32_t *nids = realloc(ids, (n ? n : 1) * sizeof *ids);
        if (!nids) {
            json_decref(j);
            rc = cli_fail("out of memory");
            break;
        }
        ids = nids;
        for (size_t k = 0; k < n && rc == 0; k++) {
            json_t *v = json_array_get(j, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > INT32_MAX)
                rc = cli_fail("stdin line %ld: item %zu is not a token id", lineno, k);
            else
                ids[k] = (int32_t)json_integer_value(v);
        }
        json_decref(j);
        if (rc) break;
        char *text = NULL;
        size_t len = 0;
        if (cllm_tokenizer_decode(t, ids, n, skip_special, &text, &len) != CLLM_OK) {
            rc = cli_fail("stdin line %ld: %s", lineno, cllm_last_error());
            break;
        }
        put_json_string(text, len);
        putchar('\n');
        free(text);
    }
    free(ids);
    free(line);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    bool skip_special = false, jsonl = false;
    int32_t *ids = calloc((size_t)argc + 1, sizeof *ids);
    size_t n = 0;
    int rc = 1;
    cllm_tokenizer *t = NULL;
    if (!ids) return cli_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_detokenize_help, stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(argc, argv, &i))) goto out;
        } else if (!strcmp(a, "--skip-special")) {
            skip_special = true;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = true;
        } else if (a[0] == '-') {
            cli_fail("detokenize: unknown option '%s' (see cllm detokenize --help)", a);
            goto out;
        } else {
            /* "1 2 3", "1,2,3" and "1, 2" all work: a list copied from anywhere. */
            int32_t *nids = realloc(ids, (n + strlen(a) / 2 + 2) * sizeof *ids);
            if (!nids) {
                cli_fail("out of memory");
                goto out;
            }
            ids = nids;
            for (const char *p = a; *p;) {
                if (*p == ' ' || *p == ',') {
                    p++;
                    continue;
                }
                char *end;
                errno = 0;
                long x = strtol(p, &end, 10);
                if (errno || end == p || x < 0 || x > INT32_MAX ||
                    (*end && *end != ' ' && *end != ',')) {
                    cli_fail("detokenize: expected token ids (non-negative integers), got '%s'", a);
                    goto out;
                }
                ids[n++] = (int32_t)x;
                p = end;
            }
        }
    }
    if (!model) {
        cli_fail("detokenize: -m MODEL_DIR is required (see cllm detokenize --help)");
        goto out;
    }
    if (jsonl == (n > 0)) {
        cli_fail("detokenize: give either token ids or --jsonl");
        goto out;
    }
    if (cllm_tokenizer_load(model, &t) != CLLM_OK) {
        cli_fail("%s", cllm_last_error());
        goto out;
    }
    if (jsonl) {
        rc = detokenize_jsonl(t, skip_special);
    } else {
        char *text = NULL;
        size_t len = 0;
        if (cllm_tokenizer_decode(t, ids, n, skip_special, &text, &len) != CLLM_OK) {
            cli_fail("%s", cllm_last_error());
            goto out;
        }
        fwrite(text, 1, len, stdout);
        free(text);
        rc = 0;
    }
    if (fflush(stdout) != 0 && rc == 0) rc = cli_fail("cannot write to stdout");
out:
    cllm_tokenizer_free(t);
    free(ids);
    return rc;
}
