/* template.c - `cllm template`: render a model's chat template for a conversation file and print
 * exactly the prompt text (for checking what the model will see). */
#include "base/mapfile.h"
#include "chat/chat_template.h"
#include "cli/cli.h"
#include "chat/chat_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_template_help =
    "usage: cllm template -m MODEL_DIR --messages CONVERSATION.json [--add-generation-prompt]\n"
    "       cllm template --template FILE [-m MODEL_DIR] --messages CONVERSATION.json\n"
    "\n"
    "Renders the chat template from MODEL_DIR/tokenizer_config.json, a GGUF file's\n"
    "tokenizer.chat_template (-m model.gguf), or FILE, and prints the\n"
    "prompt exactly, with nothing added. CONVERSATION.json is {\"messages\": [...], \"tools\":\n"
    "[...]} (tools optional, other keys are passed to the template, e.g. enable_thinking) or a\n"
    "bare array of messages. bos_token / eos_token come from the model folder when given.\n";

static int render(chat_template *t, json_t *ctx) {
    char *out;
    size_t n;
    if (chat_template_render(t, ctx, &out, &n)) return cli_fail("%s", cllm_last_error());
    fwrite(out, 1, n, stdout);
    free(out);
    return fflush(stdout) ? cli_fail("template: write failed") : 0;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages = NULL, *tmpl = NULL;
    int add_gen = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(k_template_help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(model = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(argv[i], "--messages")) {
            if (!(messages = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(argv[i], "--template")) {
            if (!(tmpl = cli_value(argc, argv, &i))) return 1;
        } else if (!strcmp(argv[i], "--add-generation-prompt")) {
            add_gen = 1;
        } else {
            return cli_fail("template: unknown option '%s' (see cllm template --help)", argv[i]);
        }
    }
    if (!messages) return cli_fail("template: --messages FILE is required");
    if (!model && !tmpl) return cli_fail("template: -m MODEL_DIR or --template FILE is required");

    json_error_t je;
    json_t *conv = json_load_file(messages, 0, &je);
    if (!conv) return cli_fail("%s:%d: %s", messages, je.line, je.text);
    json_t *ctx;
    if (json_is_array(conv)) {
        ctx = json_pack("{sO}", "messages", conv);
    } else if (json_is_object(conv) && json_is_array(json_object_get(conv, "messages"))) {
        ctx = json_deep_copy(conv);
    } else {
        json_decref(conv);
        return cli_fail("%s: expected a list of messages or {\"messages\": [...]}", messages);
    }
    json_decref(conv);
    /* transformers passes tools=None and documents=None when absent */
    if (!json_object_get(ctx, "tools")) json_object_set_new(ctx, "tools", json_null());
    if (!json_object_get(ctx, "documents")) json_object_set_new(ctx, "documents", json_null());
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_gen));

    chat_template *t = NULL;
    char *bos = NULL, *eos = NULL;
    int rc = 0;
    if (model) {
        chat_template *mt = NULL;
        cllm_status st;
        if (chat_path_is_gguf(model)) { /* tokenizer.chat_template and token texts */
            chat_prompt cp = {0};
            st = chat_prompt_load_gguf(model, &cp);
            if (!st) {
                if (tmpl)
                    chat_template_free(cp.tmpl);
                else
                    mt = cp.tmpl;
                bos = cp.bos, eos = cp.eos;
            }
        } else {
            st = chat_load_dir(model, tmpl ? NULL : &mt, &bos, &eos);
        }
        if (st && !(tmpl && st == CLLM_ERR_NOT_FOUND)) {
            rc = cli_fail("%s", cllm_last_error());
            goto done;
        }
        t = mt;
    }
    if (tmpl) {
        char *src = NULL;
        size_t len;
        if (file_read_all(tmpl, (size_t)16 << 20, &src, &len) ||
            chat_template_parse(src, len, &t)) {
            free(src);
            rc = cli_fail("%s", cllm_last_error());
            goto done;
        }
        free(src);
    }
    if (bos && !json_object_get(ctx, "bos_token"))
        json_object_set_new(ctx, "bos_token", json_string(bos));
    if (eos && !json_object_get(ctx, "eos_token"))
        json_object_set_new(ctx, "eos_token", json_string(eos));
    rc = render(t, ctx);
done:
    chat_template_free(t);
    free(bos);
    free(eos);
    json_decref(ctx);
    return rc;
}
