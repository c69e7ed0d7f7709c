/* cli.h - shared pieces of the cllm subcommands: option parsing helpers and the entry points. */
#ifndef CLLM_CLI_CLI_H
#define CLLM_CLI_CLI_H

#include "cllm.h"
#include <stdbool.h>
#include <stdint.h>

int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `cllm bench --serve`: offline serving throughput through the engine (bench_serve.c). */
int cmd_bench_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
/* `cllm serve`: the OpenAI-compatible HTTP server (serve.c). */
int cmd_serve(int argc, char **argv);

/* Print "cllm: error: <msg>" to stderr and return 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parse a number option; on error print a message and return false. */
bool cli_int(const char *opt, const char *s, long lo, long hi, long *out);
bool cli_float(const char *opt, const char *s, double lo, double hi, double *out);
/* A byte size: plain bytes (or B) or with a KiB/MiB/GiB (or K/M/G, KB/MB/GB: binary) suffix. */
bool cli_size(const char *opt, const char *s, int64_t *out);
/* Comma-separated non-negative integers (malloc'd). */
bool cli_int_list(const char *opt, const char *s, long lo, long hi, long **out, int *n);
/* Replace \n \t \r \\ \" \' escapes in place. */
void cli_unescape(char *s);
/* Value of option argv[*i] (advancing *i), or NULL with an error printed. */
const char *cli_value(int argc, char **argv, int *i);

#endif
