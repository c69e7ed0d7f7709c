/* error.c - thread-local last-error message. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];

cllm_status err_set(cllm_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return status;
}

void err_prefix(const char *fmt, ...) {
    char pre[256], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    size_t pl = strlen(pre);
    if (pl + 2 >= sizeof g_msg) return;
    memcpy(g_msg, pre, pl);
    memcpy(g_msg + pl, ": ", 2);
    snprintf(g_msg + pl + 2, sizeof g_msg - pl - 2, "%.*s", (int)(sizeof g_msg - pl - 3), old);
}

const char *cllm_last_error(void) {
    return g_msg;
}

const char *cllm_status_str(cllm_status s) {
    switch (s) {
    case CLLM_OK:
        return "ok";
    case CLLM_ERR_INVALID_ARG:
        return "invalid argument";
    case CLLM_ERR_IO:
        return "i/o error";
    case CLLM_ERR_FORMAT:
        return "bad file format";
    case CLLM_ERR_UNSUPPORTED:
        return "unsupported";
    case CLLM_ERR_NOMEM:
        return "out of memory";
    case CLLM_ERR_NOT_FOUND:
        return "not found";
    case CLLM_ERR_LIMIT:
        return "limit exceeded";
    case CLLM_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}
