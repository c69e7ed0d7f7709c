/* stop.h - stop-string matching over streamed text: text that could still be the start of a stop
 * string is held back, so a stop string is never emitted, even when split across tokens. */
#ifndef CLLM_ENGINE_STOP_H
#define CLLM_ENGINE_STOP_H

#include "cllm.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct stop_matcher {
    const char *const *stops;
    int n_stops;
    size_t max_len;
    char *buf; /* held-back text followed by new text */
    size_t len, cap;
    size_t out_len; /* bytes of buf handed out by the last call */
} stop_matcher;

cllm_status stop_init(stop_matcher *sm, const char *const *stops, int n_stops);
void stop_free(stop_matcher *sm);
void stop_reset(stop_matcher *sm);
/* Add text; out / out_len receive what can be emitted now. Returns true when a stop string was
 * found (then *out is the text before it, and the rest is dropped). */
bool stop_push(stop_matcher *sm, const char *text, size_t len, const char **out, size_t *out_len);
/* End of generation: everything held back. */
void stop_flush(stop_matcher *sm, const char **out, size_t *out_len);

#endif
