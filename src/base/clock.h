/* clock.h - monotonic wall clock in seconds, and sleeping. */
#ifndef CLLM_BASE_CLOCK_H
#define CLLM_BASE_CLOCK_H
#include <time.h>
static inline double clock_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
/* Sleep for s seconds (s > 0). */
static inline void clock_sleep(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}
#endif
