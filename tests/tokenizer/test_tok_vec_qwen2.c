/* test_tok_vec_qwen2.c - llama.cpp's tokenizer test vectors (ggml-vocab-qwen2.gguf) against
 * tokenizers/qwen2. */
#define TOK_FILES "tokenizers/qwen2"
#define TOK_VECTORS "ggml-vocab-qwen2.gguf"
/* Special-token text with parse_special: first and last ids; then bos / eos. */
#define TOK_SPECIAL_TEXT "<|im_start|>user\nhi<|im_end|>"
#define TOK_SPECIAL_FIRST 151644
#define TOK_SPECIAL_LAST 151645
#define TOK_BOS -1
#define TOK_EOS 151645
#include "tok_vectors.inc"
