/* testdata.h - where the C tests find the shared test data (models, tokenizers, goldens):
 * $CLLM_TESTDATA when set (ctest sets it), else CLLM_TESTDATA_DIR (the absolute path CMake
 * compiles in: testdata/ in the repository). A missing folder fails the test with
 * a message instead of letting it limp on. The Python tests use tests/testdata.py. */
#ifndef CLLM_TESTS_TESTDATA_H
#define CLLM_TESTS_TESTDATA_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CLLM_TESTDATA_DIR
#define CLLM_TESTDATA_DIR "testdata"
#endif

static inline const char *testdata_dir(void) {
    const char *d = getenv("CLLM_TESTDATA");
    if (!d || !*d) d = CLLM_TESTDATA_DIR;
    struct stat st;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "test data folder '%s' not found (set CLLM_TESTDATA)\n", d);
        exit(1);
    }
    return d;
}

/* "<testdata>/<rel>" written into buf (exits if it does not fit); returns buf. */
static inline const char *td_join(char *buf, size_t size, const char *rel) {
    int n = snprintf(buf, size, "%s/%s", testdata_dir(), rel);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "test data path too long: %s\n", rel);
        exit(1);
    }
    return buf;
}

/* malloc'd "<testdata>/<rel>" (free it). */
static inline char *td_path(const char *rel) {
    size_t n = strlen(testdata_dir()) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return (char *)td_join(p, n, rel);
}

#endif
