/* main.c - the cllm command: dispatch to subcommands. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("cllm - a CPU-first LLM inference engine\n"
          "\n"
          "usage: cllm <command> [options]\n"
          "\n"
          "commands:\n"
          "  run         generate text from a prompt                  (cllm run --help)\n"
          "  chat        interactive chat with the model's template (cllm chat --help)\n"
          "  info        describe a model folder                      (cllm info --help)\n"
          "  bench       prompt (pp) and decode (tg) speed, llama-bench style\n"
          "  tokenize    text -> token ids and pieces                 (cllm tokenize --help)\n"
          "  detokenize  token ids -> text                            (cllm detokenize --help)\n"
          "  template    render the model's chat template             (cllm template --help)\n"
          "  quantize    write a (quantized) GGUF file                (cllm quantize --help)\n"
          "  serve       OpenAI-compatible HTTP server                (cllm serve --help)\n"
          "\n"
          "A model is a Hugging Face folder: config.json, model.safetensors (or shards +\n"
          "model.safetensors.index.json), tokenizer.json or vocab.json + merges.txt;\n"
          "or a GGUF file (llama, qwen2, gpt2; f32/f16/bf16 and q8_0/q4_0/q4_k/q5_k/q6_k ...).\n"
          "Environment: CLLM_CPU=scalar|avx2|avx512 restricts the SIMD kernels used.\n",
          f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "detokenize")) return cmd_detokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "template")) return cmd_template(argc - 1, argv + 1);
    if (!strcmp(cmd, "chat")) return cmd_chat(argc - 1, argv + 1);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "cllm: error: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 1;
}
