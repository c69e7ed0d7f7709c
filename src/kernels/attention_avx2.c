/* attention_avx2.c - the attention kernel body compiled for AVX2 + FMA. */
#define ATTN_SUFFIX _avx2
#include "kernels/attention_impl.h"
