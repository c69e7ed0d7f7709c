/* tok_gguf_pre.c - the pre-tokenizer a GGUF tokenizer.ggml.pre name stands for. The regex lists
 * are the ones llama.cpp applies for each name (src/llama-vocab.cpp), in HF's original form where
 * llama.cpp had to adapt them for std::regex (PCRE2 handles the originals). */
#include "base/error.h"
#include "tok_internal.h"
#include <string.h>

/* clang-format off */
static const char *const RE_LLAMA3[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};

static const char *const RE_DEEPSEEK_LLM[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL};

static const char *const RE_DEEPSEEK3[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};

static const char *const RE_DEEPSEEK_CODER[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
    NULL};

static const char *const RE_FALCON[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
    NULL};

static const char *const RE_STARCODER[] = {
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL};

static const char *const RE_GPT2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL};

static const char *const RE_QWEN2[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};

static const char *const RE_PORO[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    NULL};

static const char *const RE_VIKING[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    "\\p{N}",
    NULL};

static const char *const RE_TEKKEN[] = {
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};

static const char *const RE_CHAMELEON[] = {
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL};

static const char *const RE_DEFAULT[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL};

/* clang-format on */

typedef struct pre_kind {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *const *regexes;
    bool ignore_merges, add_bos;
} pre_kind;

static const pre_kind kinds[] = {
    {"default", RE_DEFAULT, false, false},
    {"llama3|llama-v3|llama-bpe|falcon3", RE_LLAMA3, true, true},
    {"dbrx|smaug-bpe|chatglm-bpe", RE_LLAMA3, false, false},
    {"deepseek-llm", RE_DEEPSEEK_LLM, false, false},
    {"deepseek-coder", RE_DEEPSEEK_CODER, false, false},
    {"deepseek-v3", RE_DEEPSEEK3, false, false},
    {"falcon", RE_FALCON, false, false},
    {"gpt-2|mpt|phi-2|olmo|jais|gigachat|roberta-bpe|jina-es|jina-de|jina-v1-en|jina-v2-es|"
     "jina-v2-de|jina-v2-code",
     RE_GPT2, false, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", RE_STARCODER, false, false},
    {"qwen2|deepseek-r1-qwen|stablelm2|megrez", RE_QWEN2, false, false},
    {"poro-chat|bloom|gpt3-finnish", RE_PORO, false, false},
    {"viking", RE_VIKING, false, false},
    {"tekken", RE_TEKKEN, true, true},
    {"chameleon", RE_CHAMELEON, false, true},
};

static bool name_in(const char *list, const char *name, size_t len) {
    for (const char *p = list;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !memcmp(p, name, len)) return true;
        if (!bar) return false;
        p = bar + 1;
    }
}

/* Each regex splits every piece the previous one produced, keeping matches and the text between
 * them (HF's Split with "Isolated"); then the pieces are mapped to the byte-level alphabet. */
cllm_status tok_gguf_pretok(tokenizer *t, const char *pre, size_t len, const char *path,
                            bool *add_bos) {
    if (len == 0) pre = "default"; /* llama.cpp's fallback for files without the key */
    const pre_kind *k = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds && !k; i++)
        if (name_in(kinds[i].names, pre, len ? len : strlen(pre))) k = &kinds[i];
    if (!k)
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: unknown pre-tokenizer type '%.*s'", path,
                       (int)(len > 100 ? 100 : len), pre);
    json_t *seq = json_array();
    for (const char *const *re = k->regexes; seq && *re; re++)
        if (json_array_append_new(seq, json_pack("{s:s, s:{s:s}, s:s}", "type", "Split", "pattern",
                                                 "Regex", *re, "behavior", "Isolated"))) {
            json_decref(seq);
            seq = NULL;
        }
    if (seq && json_array_append_new(seq, json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel",
                                                    "add_prefix_space", 0, "trim_offsets", 0,
                                                    "use_regex", 0))) {
        json_decref(seq);
        seq = NULL;
    }
    json_t *j = seq ? json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", seq) : NULL;
    if (!j) return err_set(CLLM_ERR_NOMEM, "%s: out of memory", path);
    cllm_status st = tok_pretok_parse(j, path, &t->pretok);
    json_decref(j);
    t->ignore_merges = k->ignore_merges;
    *add_bos = k->add_bos;
    return st;
}
