/* test_tok_vec_llama3.c - llama.cpp's tokenizer test vectors (ggml-vocab-llama-bpe.gguf) against
 * tokenizers/llama3. */
#define TOK_FILES "tokenizers/llama3"
#define TOK_VECTORS "ggml-vocab-llama-bpe.gguf"
/* Special-token text with parse_special: first and last ids; then bos / eos. */
#define TOK_SPECIAL_TEXT "<|begin_of_text|>hi<|eot_id|>"
#define TOK_SPECIAL_FIRST 128000
#define TOK_SPECIAL_LAST 128009
#define TOK_BOS 128000
#define TOK_EOS 128001
#include "tok_vectors.inc"
