/* template.c - `cllm template`: render a model's chat template for a conversation file and print
 * exactly the prompt text (for checking what the model will see). */
#include "cli/cli.h"

#include "base/mapfile.h"

#include <jansson.h>
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

    char *conv = NULL, *src = NULL, *out = NULL;
    size_t conv_len, src_len = 0, n;
    cllm_chat_template *t = NULL;
    int rc = 1;
    if (file_read_all(messages, (size_t)64 << 20, &conv, &conv_len)) {
        cli_fail("%s", cllm_last_error());
        goto done;
    }
    json_error_t je;
    json_t *root = json_loadb(conv, conv_len, 0, &je);
    bool shaped = json_is_array(root) ||
                  (json_is_object(root) && json_is_array(json_object_get(root, "messages")));
    json_decref(root);
    if (!root) {
        cli_fail("%s:%d: %s", messages, je.line, je.text);
        goto done;
    }
    if (!shaped) {
        cli_fail("%s: expected a list of messages or {\"messages\": [...]}", messages);
        goto done;
    }
    /* the template from FILE and/or the model, with the model's bos/eos strings */
    if ((tmpl && file_read_all(tmpl, (size_t)16 << 20, &src, &src_len)) ||
        cllm_chat_template_load(model, src, src_len, &t) ||
        cllm_chat_render(t, conv, conv_len, add_gen, &out, &n, NULL, NULL, NULL)) {
        cli_fail("%s", cllm_last_error());
        goto done;
    }
    fwrite(out, 1, n, stdout);
    rc = fflush(stdout) ? cli_fail("template: write failed") : 0;
done:
    cllm_chat_template_free(t);
    free(out);
    free(src);
    free(conv);
    return rc;
}
