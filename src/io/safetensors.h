/* safetensors.h - parse .safetensors files (single or sharded via model.safetensors.index.json)
 * into tensor views over memory-mapped bytes. Every header field is validated before use. */
#ifndef CLLM_IO_SAFETENSORS_H
#define CLLM_IO_SAFETENSORS_H

#include "base/mapfile.h"
#include "io/tensor.h"

typedef struct st_set {
    mapfile *files;
    int n_files;
    tensor *tensors; /* sorted by name */
    int n_tensors;
} st_set;

/* Open one .safetensors file. */
cllm_status st_open_file(const char *path, st_set *out);
/* Open a model folder: model.safetensors.index.json (sharded) or model.safetensors. */
cllm_status st_open_dir(const char *dir, st_set *out);
void st_close(st_set *s);

/* NULL when absent. */
const tensor *st_find(const st_set *s, const char *name);

#endif
