/* scheduler.h - which sequences run in the next step and with how many tokens: running decodes
 * first, then prefill chunks of waiting / partly prefilled sequences (FCFS) within a token budget
 * and a sequence cap; admission through the block manager; preemption by recompute. */
#ifndef CLLM_ENGINE_SCHEDULER_H
#define CLLM_ENGINE_SCHEDULER_H

#include "engine/sequence.h"
#include "kv/block_manager.h"

typedef struct scheduler {
    kv_block_manager *bm;
    int max_batched_tokens, max_seqs;
    sequence **waiting; /* FCFS; preempted sequences go back to the front */
    int n_waiting, cap_waiting;
    sequence **running; /* admission order: the last one is preempted first */
    int n_running;
    sequence **batch; /* scheduled this step, each with ->chunk tokens, in batch order */
    int n_batch;
    int64_t preemptions;
} scheduler;

cllm_status sched_init(scheduler *sc, kv_block_manager *bm, int max_batched_tokens, int max_seqs);
void sched_free(scheduler *sc);
/* Append to the waiting queue. */
cllm_status sched_add(scheduler *sc, sequence *s);
/* Take the sequence out of whichever queue holds it and release its KV blocks. */
void sched_remove(scheduler *sc, sequence *s);
/* Fill sc->batch for the next step. The table of every scheduled sequence covers its chunk. */
void sched_schedule(scheduler *sc);

#endif
