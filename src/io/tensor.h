/* tensor.h - a read-only view of one tensor stored in a model file (bytes used in place). */
#ifndef CLLM_IO_TENSOR_H
#define CLLM_IO_TENSOR_H

#include "base/dtype.h"
#include <stdint.h>

#define TENSOR_MAX_DIMS 8

/* Element types a file may declare; only the first three are computed with. */
typedef enum st_dtype {
    ST_F32 = DTYPE_F32,
    ST_F16 = DTYPE_F16,
    ST_BF16 = DTYPE_BF16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2,
} st_dtype;

typedef struct tensor {
    char *name;
    st_dtype dt;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t nelem;
    const void *data; /* inside a mapped file */
    uint64_t nbytes;
    const char *file; /* path of the file holding it (for error messages) */
} tensor;

static inline int st_dtype_is_float(st_dtype t) {
    return t <= ST_BF16;
}
const char *st_dtype_name(st_dtype t);

#endif
