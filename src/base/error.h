/* error.h - status codes and the thread-local "last error" message every module reports through. */
#ifndef CLLM_BASE_ERROR_H
#define CLLM_BASE_ERROR_H

#include "cllm.h"

/* Record a formatted message for cllm_last_error() and return `status`, so callers can write
 * `return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s' ...", path, name);`. */
cllm_status err_set(cllm_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "prefix: " (used to add a file name on the way up). */
void err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
