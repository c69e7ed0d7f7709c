/* sampler.h - turn one row of logits into a token id: penalties, greedy / top-k / top-p /
 * min-p / temperature, and a per-sequence RNG.
 *
 * Order (llama.cpp's default chain): repetition, presence and frequency penalties over the last
 * repeat_last_n tokens -> if temperature <= 0: argmax (ties: lowest id) -> top-k -> top-p ->
 * min-p -> temperature -> softmax -> draw with the sequence's RNG. */
#ifndef CLLM_ENGINE_SAMPLER_H
#define CLLM_ENGINE_SAMPLER_H

#include "cllm.h"
#include <stdint.h>

typedef struct sampler sampler;

/* vocab: logits row length. Allocates all scratch here (nothing allocated per token). */
cllm_status sampler_create(const cllm_sampling_params *p, int vocab, sampler **out);
void sampler_free(sampler *s);
/* Reseed the RNG and forget the token history. */
void sampler_reset(sampler *s);
/* Record a token as part of the context (prompt tokens and generated ones) for the penalties. */
void sampler_accept(sampler *s, int32_t id);
/* Sample from logits[vocab]. logits may be modified in place (penalties). */
int32_t sampler_sample(sampler *s, float *logits);

#endif
