/* stop.c - hold back the longest suffix that is a prefix of some stop string; cut at the first
 * complete stop string. */
#include "engine/stop.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

cllm_status stop_init(stop_matcher *sm, const char *const *stops, int n_stops) {
    memset(sm, 0, sizeof *sm);
    sm->stops = stops;
    sm->n_stops = n_stops;
    for (int i = 0; i < n_stops; i++) {
        size_t l = strlen(stops[i]);
        if (l == 0) return err_set(CLLM_ERR_INVALID_ARG, "empty stop string");
        if (l > sm->max_len) sm->max_len = l;
    }
    sm->cap = sm->max_len + 4096;
    sm->buf = malloc(sm->cap);
    if (!sm->buf) return err_set(CLLM_ERR_NOMEM, "out of memory");
    return CLLM_OK;
}

void stop_free(stop_matcher *sm) {
    free(sm->buf);
    memset(sm, 0, sizeof *sm);
}

void stop_reset(stop_matcher *sm) {
    sm->len = sm->out_len = 0;
}

/* drop what was handed out last time */
static void consume(stop_matcher *sm) {
    memmove(sm->buf, sm->buf + sm->out_len, sm->len - sm->out_len);
    sm->len -= sm->out_len;
    sm->out_len = 0;
}

bool stop_push(stop_matcher *sm, const char *text, size_t len, const char **out, size_t *out_len) {
    consume(sm);
    if (sm->len + len > sm->cap) {
        size_t cap = (sm->len + len) * 2;
        char *nb = realloc(sm->buf, cap);
        if (!nb) { /* cannot hold back: emit as is (no stop detection for this piece) */
            *out = text;
            *out_len = len;
            return false;
        }
        sm->buf = nb;
        sm->cap = cap;
    }
    memcpy(sm->buf + sm->len, text, len);
    sm->len += len;
    if (sm->n_stops == 0) {
        *out = sm->buf;
        *out_len = sm->out_len = sm->len;
        return false;
    }
    /* earliest complete stop string */
    size_t best = (size_t)-1;
    for (int i = 0; i < sm->n_stops; i++) {
        size_t l = strlen(sm->stops[i]);
        for (size_t p = 0; p + l <= sm->len && p < best; p++)
            if (memcmp(sm->buf + p, sm->stops[i], l) == 0) {
                best = p;
                break;
            }
    }
    *out = sm->buf;
    if (best != (size_t)-1) {
        *out_len = best;
        sm->out_len = sm->len; /* everything else is dropped */
        return true;
    }
    /* longest suffix that is a proper prefix of a stop string stays held back */
    size_t hold = 0;
    for (int i = 0; i < sm->n_stops; i++) {
        size_t l = strlen(sm->stops[i]);
        for (size_t k = l - 1; k > hold; k--)
            if (k <= sm->len && memcmp(sm->buf + sm->len - k, sm->stops[i], k) == 0) {
                hold = k;
                break;
            }
    }
    *out_len = sm->out_len = sm->len - hold;
    return false;
}

void stop_flush(stop_matcher *sm, const char **out, size_t *out_len) {
    consume(sm);
    *out = sm->buf;
    *out_len = sm->out_len = sm->len;
}
