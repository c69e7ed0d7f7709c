#!/usr/bin/python3
"""End-to-end tests of `cllm run --messages` and `cllm chat` on stories260K with a Llama-2 style
chat template added beside it (the real folder has none).

Oracle: Python jinja2 renders the template (as transformers does); the rendered text, given to
`cllm run -p` (which tokenizes it and adds BOS like the template does), must produce the same
greedy ids as `cllm run --messages`. `cllm chat` fed the same user line must print the same reply.

usage: test_chat_cli.py PATH_TO_CLLM
"""
import json
import os
import re
import tempfile

import jinja2

from clitest import TESTDATA, check, finish, run

SRC = os.path.join(TESTDATA, "stories260K-hf")
TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
            "{{ '[INST] ' + m['content'] + ' [/INST]' }}{% elif m['role'] == 'assistant' %}"
            "{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}")

with tempfile.TemporaryDirectory() as d:
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        os.symlink(os.path.join(SRC, f), os.path.join(d, f))
    cfg = json.load(open(os.path.join(SRC, "tokenizer_config.json")))
    cfg["chat_template"] = TEMPLATE
    json.dump(cfg, open(os.path.join(d, "tokenizer_config.json"), "w"))

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    for msgs in ([{"role": "user", "content": "Once upon a time"}],
                 [{"role": "user", "content": "Lily had a"}, {"role": "assistant", "content": "big box."},
                  {"role": "user", "content": "Tom saw"}]):
        conv = os.path.join(d, "conv.json")
        json.dump({"messages": msgs}, open(conv, "w"))
        rendered = env.from_string(TEMPLATE).render(messages=msgs, bos_token="<s>", eos_token="</s>")
        rc, out, err = run("template", "-m", d, "--messages", conv, "--add-generation-prompt")
        check("template render", rc == 0 and out.decode() == rendered, f"{out!r} vs {rendered!r}")
        assert rendered.startswith("<s>")
        rc1, a, e1 = run("run", "-m", d, "--messages", conv, "-n", "30", "--temp", "0", "--ids")
        rc2, b, e2 = run("run", "-m", d, "-p", rendered[len("<s>"):], "-n", "30", "--temp", "0", "--ids")
        check("run --messages ids", rc1 == 0 and rc2 == 0 and a == b and a.strip(), f"{a!r} vs {b!r} {e1[-300:]!r}")
        rc, text, err = run("run", "-m", d, "--messages", conv, "-n", "30", "--temp", "0")
        check("run --messages text", rc == 0 and len(text) > 1, err[-300:])
        if len(msgs) == 1:
            rc, chat_out, err = run("chat", "-m", d, "-n", "30", "--temp", "0",
                                    stdin=(msgs[0]["content"] + "\n").encode())
            check("chat reply == run --messages", rc == 0 and chat_out == text, f"{chat_out!r} vs {text!r}")
    # Two turns: the second evaluates only what the prefix cache cannot serve. The first turn wrote
    # KV for its prompt and all reply tokens but the last; full 16-token blocks of those are hits.
    rc, out, err = run("chat", "-m", d, "-n", "30", "--temp", "0", "-v",
                       stdin=b"Once upon a time there was a little girl named Lily who liked to play\nTom saw a big dog\n")
    turns = [tuple(int(x) for x in re.search(rb"prompt tokens += +(\d+) \((\d+) from", blk).groups())
             + (int(re.search(rb"generated (\d+) tokens", blk).group(1)),)
             for blk in err.split(b"load time")[1:]]
    check("chat two turns", rc == 0 and len(turns) == 2, err[-300:])
    if len(turns) == 2:
        (n1, c1, g1), (n2, c2, _) = turns
        had_kv = n1 + g1 - 1
        check("chat turn 2 extends turn 1", c1 == 0 and n2 > n1 + g1, turns)
        check("chat turn 2 prefix hits", c2 == had_kv // 16 * 16 and had_kv - c2 <= 15, turns)
    rc, out, err = run("chat", "-m", SRC, "-n", "5")
    check("chat without template fails cleanly", rc == 1 and b"error" in err, err)
    bad = os.path.join(d, "bad.json")
    open(bad, "w").write('{"messages": [{"content": "no role"}]}')
    rc, out, err = run("run", "-m", d, "--messages", bad)
    check("bad conversation fails cleanly", rc == 1 and b"role" in err, err)
    rc, out, err = run("chat", "--help")
    check("chat --help", rc == 0 and b"/reset" in out)

finish()
