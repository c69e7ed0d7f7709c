/* fuzz_safetensors.c - libFuzzer target for a Hugging Face model folder's config.json and
 * safetensors file, and the binding of one to the other: the input is config.json, a line
 * "\n--8<--\n", then model.safetensors (without the separator, all of it is the safetensors
 * file and config.json is a fixed small Llama). Both are written to a per-process folder in
 * /dev/shm (or /tmp); st_open_file, model_config_load and model_weights_bind run on them and
 * every bound tensor's first and last byte is read (it must lie in the mapping). */
#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], cfg_path[96], st_path[96];

static const char k_config[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 16, "
    "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"num_hidden_layers\": 1, "
    "\"vocab_size\": 8, \"max_position_embeddings\": 32, \"rms_norm_eps\": 1e-5, "
    "\"tie_word_embeddings\": true, \"torch_dtype\": \"float32\"}";

static void put(const char *path, const uint8_t *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/cllm-fuzz-st-%d", base, (int)getpid());
        mkdir(dir, 0700);
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
        snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    }
    static const char sep[] = "\n--8<--\n";
    const uint8_t *cut = NULL;
    for (size_t i = 0; i + sizeof sep - 1 <= size && !cut; i++)
        if (!memcmp(data + i, sep, sizeof sep - 1)) cut = data + i;
    if (cut) {
        put(cfg_path, data, (size_t)(cut - data));
        size_t off = (size_t)(cut - data) + sizeof sep - 1;
        put(st_path, data + off, size - off);
    } else {
        put(cfg_path, (const uint8_t *)k_config, sizeof k_config - 1);
        put(st_path, data, size);
    }
    st_set st;
    if (st_open_file(st_path, &st) != CLLM_OK) return 0;
    static volatile uint8_t sink;
    for (int i = 0; i < st.n_tensors; i++) {
        const tensor *t = &st.tensors[i];
        const uint8_t *p = t->data;
        if (t->nbytes) sink = sink ^ p[0] ^ p[t->nbytes - 1];
    }
    model_config c;
    if (model_config_load(dir, &c) == CLLM_OK && c.n_layers <= 64) {
        model_weights w;
        if (model_weights_bind(&c, &st, &w) == CLLM_OK) model_weights_free(&w);
    }
    st_close(&st);
    return 0;
}
