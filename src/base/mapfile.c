/* mapfile.c - mmap wrapper and small-file reader. */
#include "base/mapfile.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

cllm_status mapfile_open(const char *path, mapfile *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(CLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(CLLM_ERR_IO, "%s: not a regular file", path);
    }
    out->size = (size_t)st.st_size;
    if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return err_set(CLLM_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        out->data = p;
    }
    close(fd);
    out->path = strdup(path);
    if (!out->path) {
        mapfile_close(out);
        return err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    return CLLM_OK;
}

void mapfile_close(mapfile *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, m->size);
    free(m->path);
    memset(m, 0, sizeof *m);
}

cllm_status file_read_all(const char *path, size_t max_size, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(CLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_size) {
                free(buf);
                fclose(f);
                return err_set(CLLM_ERR_LIMIT, "%s: file larger than %zu bytes", path, max_size);
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return err_set(CLLM_ERR_NOMEM, "out of memory");
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(CLLM_ERR_IO, "%s: read error", path);
    }
    if (n > max_size) {
        free(buf);
        return err_set(CLLM_ERR_LIMIT, "%s: file larger than %zu bytes", path, max_size);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return CLLM_OK;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
