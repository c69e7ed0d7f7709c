/* util.c - option parsing helpers for the subcommands. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("cllm: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

bool cli_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_fail("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        cli_fail("%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_int_list(const char *opt, const char *s, long lo, long hi, long **out, int *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    long *v = malloc(cap * sizeof(long));
    if (!v) return false;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno || end == p || x < lo || x > hi || (*end && *end != ',')) {
            free(v);
            cli_fail("%s: expected comma-separated integers in [%ld, %ld], got '%s'", opt, lo, hi,
                     s);
            return false;
        }
        v[(*n)++] = x;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        free(v);
        cli_fail("%s: empty list", opt);
        return false;
    }
    *out = v;
    return true;
}

void cli_unescape(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) {
            r++;
            switch (*r) {
            case 'n':
                *w++ = '\n';
                break;
            case 't':
                *w++ = '\t';
                break;
            case 'r':
                *w++ = '\r';
                break;
            case '\\':
                *w++ = '\\';
                break;
            case '"':
                *w++ = '"';
                break;
            case '\'':
                *w++ = '\'';
                break;
            default:
                *w++ = '\\';
                *w++ = *r;
                break;
            }
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_fail("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool cli_size(const char *opt, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mul = 1;
    if (!strcmp(end, "KiB") || !strcmp(end, "K") || !strcmp(end, "k") || !strcmp(end, "KB"))
        mul = 1024.0;
    else if (!strcmp(end, "MiB") || !strcmp(end, "M") || !strcmp(end, "MB"))
        mul = 1024.0 * 1024;
    else if (!strcmp(end, "GiB") || !strcmp(end, "G") || !strcmp(end, "GB"))
        mul = 1024.0 * 1024 * 1024;
    else if (*end && strcmp(end, "B"))
        mul = -1;
    if (errno || end == s || mul < 0 || !(v > 0) || v * mul > 1e15) {
        cli_fail("%s: expected a size such as 512MiB or 2GiB, got '%s'", opt, s);
        return false;
    }
    *out = (int64_t)(v * mul);
    return true;
}
