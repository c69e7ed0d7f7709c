/* mapfile.h - read-only memory-mapped files (model weights are used in place from these). */
#ifndef CLLM_BASE_MAPFILE_H
#define CLLM_BASE_MAPFILE_H

#include "cllm.h"
#include <stddef.h>
#include <stdint.h>

typedef struct mapfile {
    const uint8_t *data;
    size_t size;
    char *path;
} mapfile;

/* Map `path` read-only. An empty file maps to data == NULL, size 0. */
cllm_status mapfile_open(const char *path, mapfile *out);
void mapfile_close(mapfile *m);

/* Read a whole (small) file into a NUL-terminated malloc'd buffer; max_size guards against
 * absurd inputs. */
cllm_status file_read_all(const char *path, size_t max_size, char **out, size_t *len);
int file_exists(const char *path);

#endif
