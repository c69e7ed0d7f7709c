/* attention_avx512.c - the attention kernel body compiled for AVX-512. */
#define ATTN_SUFFIX _avx512
#include "kernels/attention_impl.h"
