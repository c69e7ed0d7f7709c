/* test_stop.c - stop-string matching across token boundaries (hand-computed expectations). */
#include "check.h"
#include "engine/stop.h"

#include <string.h>

/* feed pieces, collect emitted text; return whether a stop fired */
static int feed(const char *const *stops, int ns, const char *const *pieces, int np, char *got) {
    stop_matcher sm;
    if (stop_init(&sm, stops, ns)) return -1;
    got[0] = 0;
    int hit = 0;
    for (int i = 0; i < np && !hit; i++) {
        const char *o;
        size_t ol;
        hit = stop_push(&sm, pieces[i], strlen(pieces[i]), &o, &ol);
        strncat(got, o, ol);
    }
    if (!hit) {
        const char *o;
        size_t ol;
        stop_flush(&sm, &o, &ol);
        strncat(got, o, ol);
    }
    stop_free(&sm);
    return hit;
}

int main(void) {
    char got[256];
    const char *s1[] = {"\n\n"};
    const char *p1[] = {"Hello", "\n", "\n", "World"};
    CHECK(feed(s1, 1, p1, 4, got) == 1 && strcmp(got, "Hello") == 0);
    const char *p2[] = {"Hello", "\n", "World"};
    CHECK(feed(s1, 1, p2, 3, got) == 0 && strcmp(got, "Hello\nWorld") == 0);
    const char *s3[] = {"END", "STOP"};
    const char *p3[] = {"abc ST", "O", "P tail"};
    CHECK(feed(s3, 2, p3, 3, got) == 1 && strcmp(got, "abc ") == 0);
    const char *p4[] = {"xEN"};
    CHECK(feed(s3, 2, p4, 1, got) == 0 && strcmp(got, "xEN") == 0); /* held back, then flushed */
    const char *p5[] = {"aENDb"};
    CHECK(feed(s3, 2, p5, 1, got) == 1 && strcmp(got, "a") == 0);
    const char *p6[] = {"one", " two"};
    CHECK(feed(NULL, 0, p6, 2, got) == 0 && strcmp(got, "one two") == 0);
    /* emitted text never contains a prefix of a stop string that later completes */
    {
        stop_matcher sm;
        const char *st[] = {"<|end|>"};
        stop_init(&sm, st, 1);
        const char *o;
        size_t ol;
        CHECK(!stop_push(&sm, "hi <|", 5, &o, &ol) && ol == 3);
        CHECK(!stop_push(&sm, "en", 2, &o, &ol) && ol == 0);
        CHECK(stop_push(&sm, "d|> more", 8, &o, &ol) && ol == 0);
        stop_free(&sm);
    }
    const char *empty[] = {""};
    stop_matcher sm;
    CHECK(stop_init(&sm, empty, 1) == CLLM_ERR_INVALID_ARG);
    stop_free(&sm);
    CHECK_DONE();
}
