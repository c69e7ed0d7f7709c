/* fuzz_gguf.c - libFuzzer target for the GGUF reader and everything that trusts it when a model
 * is loaded: header, key/values, tensor infos (gguf.c, gguf_tensors.c), the architecture config
 * (config_gguf.c), tensor binding with vector conversion (weights_gguf.c), the chat template and
 * the tokenizer built from the file's metadata. gguf_open takes a path, so each input is written
 * to a per-process file in /dev/shm (or /tmp). */
#include "chat/chat_prompt.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void touch_metadata(const gguf_file *f) {
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_str k = gguf_key_at(f, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(k.len < 255 ? k.len : 255), k.p);
        gguf_arr a;
        gguf_str s;
        uint32_t u;
        float x;
        if (gguf_get_arr(f, key, GGUF_TYPE_COUNT, &a) == CLLM_OK && a.n)
            (void)(gguf_arr_str(&a, a.n - 1).len + gguf_arr_int(&a, 0) + gguf_arr_float(&a, 0));
        (void)gguf_get_str(f, key, &s);
        (void)gguf_get_u32(f, key, &u);
        (void)gguf_get_f32(f, key, &x);
    }
    static volatile uint8_t sink;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->nbytes) sink = sink ^ t->data[0] ^ t->data[t->nbytes - 1]; /* must lie in the file */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/cllm-fuzz-%d.gguf", dir, (int)getpid());
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    gguf_file *f;
    if (gguf_open(path, &f) != CLLM_OK) return 0;
    touch_metadata(f);
    model_config c;
    if (model_config_load_gguf(f, &c) == CLLM_OK && c.n_layers <= 64) {
        model_weights w;
        if (model_weights_bind_gguf(&c, f, &w) == CLLM_OK) model_weights_free(&w);
    }
    gguf_close(f);
    chat_prompt cp;
    if (chat_prompt_load_gguf(path, &cp) == CLLM_OK) chat_prompt_free(&cp);
    tokenizer *t;
    if (tok_load_gguf(path, &t) == CLLM_OK) tok_free(t);
    return 0;
}
