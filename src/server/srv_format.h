/* srv_format.h - OpenAI response bodies: errors, whole chat/completion responses, and the SSE
 * chunks of a streamed one (OpenAI's exact chunk shapes, ending with `data: [DONE]`). */
#ifndef CLLM_SERVER_SRV_FORMAT_H
#define CLLM_SERVER_SRV_FORMAT_H

#include "server/srv_internal.h"

/* {"error": {"message", "type", "param", "code"}} (malloc'd). */
char *srv_fmt_error(const srv_error *e, size_t *len);
/* A JSON value serialised compactly (malloc'd); steals the reference. */
char *srv_fmt_json(json_t *v, size_t *len);
/* The whole response of a finished job (job->mu held). NULL on out of memory. */
char *srv_fmt_response(srv_job *j, size_t *len);
/* Append the SSE chunks of everything not yet streamed (job->mu held): role/echo chunks first,
 * text deltas, finish chunks, then usage and [DONE] once every choice finished (stream_done).
 * False on out of memory. */
bool srv_fmt_stream(srv_job *j, strbuf *out);

#endif
