/* fuzz_request.c - libFuzzer target for the OpenAI request parser (src/server/srv_request.c):
 * the first byte picks chat ('c') or completions (anything else), the rest is the body. Every
 * accepted request must satisfy the parser's contract; every rejection must be a 4xx/5xx with a
 * message. Build and run: fuzz/fuzz_request.sh OUT_DIR SECONDS. */
#include "server/srv_request.h"

#include <stdlib.h>
#include <string.h>

/* The parser takes its sampling defaults from the library; this target links only the parser
 * (and jansson), so it supplies them (every field is overridden by the parser anyway). */
cllm_sampling_params cllm_sampling_default_params(void) {
    cllm_sampling_params p;
    memset(&p, 0, sizeof p);
    p.top_p = 1;
    p.repeat_penalty = 1;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    srv_kind kind = data[0] == 'c' ? SRV_CHAT : SRV_COMPLETION;
    srv_request r;
    srv_error e;
    if (srv_request_parse(kind, (const char *)data + 1, size - 1, &r, &e)) {
        if (r.n < 1 || r.n > SRV_MAX_N || r.n_stop < 0 || r.n_stop > SRV_MAX_STOP ||
            r.top_logprobs < 0 || r.top_logprobs > CLLM_MAX_TOP_LOGPROBS ||
            (r.max_tokens != -1 && r.max_tokens < 1) || r.min_tokens < 0 ||
            (kind == SRV_CHAT && !json_is_array(r.messages)) ||
            (kind == SRV_COMPLETION && !r.prompt && !r.prompt_ids))
            abort();
        for (int i = 0; i < r.n_stop; i++)
            if (!r.stop[i][0]) abort();
        srv_request_free(&r);
    } else if (e.status < 400 || e.status > 599 || !e.message[0] || !e.type) {
        abort();
    }
    return 0;
}
