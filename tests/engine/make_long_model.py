"""Writes a tiny random Qwen2-shaped model (BF16, q/k/v biases, GQA, vocab 512) with a
2048-token context into OUT_DIR, for engine tests that need prompts of up to 1000 tokens
(stories260K's context is 512). Built from the oracle's tiny-model generator.

Usage: make_long_model.py OUT_DIR"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import make_tiny_models as tiny  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_long_model.py OUT_DIR")
    cfg, tensors = tiny.llama_like("Qwen2ForCausalLM", 21, vocab=512, hidden=64, inter=128,
                                   layers=2, heads=4, kv_heads=2, qkv_bias=True,
                                   extra_cfg={"max_position_embeddings": 2048,
                                              "rope_theta": 1000000.0})
    tiny.write_model(sys.argv[1], cfg, tensors, "BF16")


if __name__ == "__main__":
    main()
