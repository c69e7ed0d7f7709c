#!/usr/bin/env python3
"""Chat template oracle test: every template x conversation is rendered by Python jinja2 (set up
the way Hugging Face transformers does) and by cllm's C renderer; the bytes must be identical.
When jinja2 raises (raise_exception or a runtime error) the C renderer must fail too, and for
raise_exception it must report the same message. Usage: test_chat_oracle.py DRIVER"""
import json
import os
import subprocess
import sys
import tempfile

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from testdata import TESTDATA  # noqa: E402  (tests/testdata.py)


class GenerationTracker(Extension):
    """Like transformers' AssistantTracker: {% generation %} just renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.Scope(body, lineno=lineno)


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def model_template(sub):
    path = os.path.join(TESTDATA, sub, "tokenizer_config.json")
    if not os.path.exists(path):
        return None
    cfg = json.load(open(path, encoding="utf-8"))
    t = cfg.get("chat_template")
    if isinstance(t, list):
        t = next((x["template"] for x in t if x.get("name") == "default"), None)
    tok = lambda k: (cfg.get(k) or {}).get("content") if isinstance(cfg.get(k), dict) else cfg.get(k)
    return (t, tok("bos_token"), tok("eos_token")) if t else None


U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}

BASIC = {
    "single": [U("Hello!")],
    "system": [S("You are terse."), U("Hi there")],
    "multi_sys": [S("Be nice."), U("What is 2+2?"), A("4."), U("And 3+3?")],
    "multi": [U("One"), A("Two"), U("Three"), A("Four")],
    "empty": [U("")],
    "unicode": [S("Réponds en français 🇫🇷"), U("Ça va? 你好 👋🏽\ttab"), A("Très bien — merci! 😀"), U("ünïcödé \u2028 sep")],
    "spaces": [U("  padded with spaces \n\n"), A("\n answer \n")],
    "quotes": [U("He said \"hi\" and 'bye' \\ {{ not a tag }} {% nor this %}")],
}
ERRORS = {
    "user_user": [U("a"), U("b")],
    "starts_assistant": [A("I speak first"), U("ok")],
}

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                               "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}
QWEN3 = {
    "tools": dict(messages=[S("You help."), U("Weather in Paris?")], tools=[WEATHER_TOOL]),
    "tools_nosys": dict(messages=[U("Weather in Paris?")], tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "noop", "parameters": {}}}]),
    "tool_calls": dict(messages=[U("Weather in Paris and Rome?"),
                                 {"role": "assistant", "content": "", "tool_calls": [
                                     {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}},
                                     {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
                                 {"role": "tool", "content": "{\"temp\": 21.5}"},
                                 {"role": "tool", "content": "18°C, sunny ☀️"},
                                 A("Paris 21.5°C, Rome 18°C.")], tools=[WEATHER_TOOL]),
    "tool_calls_content": dict(messages=[U("Paris?"), {"role": "assistant", "content": "Let me check.", "tool_calls": [
                                 {"name": "get_weather", "arguments": {"city": "Paris"}}]},
                                 {"role": "tool", "content": "sunny"}], tools=[WEATHER_TOOL]),
    "reasoning": dict(messages=[U("2+2?"), {"role": "assistant", "content": "4", "reasoning_content": "\nadd them\n"}, U("3+3?")]),
    "reasoning_last": dict(messages=[U("2+2?"), {"role": "assistant", "content": "4", "reasoning_content": "simple"}]),
    "think_inline": dict(messages=[U("q1"), A("<think>\nhmm\n</think>\n\nanswer1"), U("q2"), A("<think>x</think>answer2")]),
    "thinking_off": dict(messages=[U("Hi")], enable_thinking=False),
    "thinking_on": dict(messages=[U("Hi")], enable_thinking=True),
    "tool_response_user": dict(messages=[U("<tool_response>\nx\n</tool_response>"), A("ok"), U("real question")]),
}


def run_case(driver, env_tpl, src, ctx, tmpdir):
    """Returns (ok, detail)."""
    try:
        expected = env_tpl.render(**ctx)
        exp_err = None
    except jinja2.exceptions.TemplateError as e:
        expected, exp_err = None, ("template", str(e))
    except Exception as e:  # TypeError etc.: any failure must also fail in C
        expected, exp_err = None, ("runtime", str(e))
    cpath = os.path.join(tmpdir, "ctx.json")
    with open(cpath, "w", encoding="utf-8") as f:
        json.dump(ctx, f, ensure_ascii=False)
    r = subprocess.run([driver, os.path.join(tmpdir, "tpl.jinja"), cpath], capture_output=True, timeout=30)
    if exp_err is None:
        if r.returncode != 0:
            return False, "C failed: " + r.stderr.decode("utf-8", "replace").strip()
        got = r.stdout.decode("utf-8", "surrogateescape")
        if got != expected:
            return False, "mismatch:\n--- jinja2\n%r\n--- cllm\n%r" % (expected, got)
        return True, ""
    if r.returncode == 0:
        return False, "jinja2 raised %r but C rendered %r" % (exp_err, r.stdout[:200])
    msg = r.stderr.decode("utf-8", "replace")
    if exp_err[0] == "template" and exp_err[1] not in msg:
        return False, "error message %r does not contain %r" % (msg.strip(), exp_err[1])
    return True, ""


def main():
    driver = sys.argv[1]
    env = make_env()
    templates = []  # (name, src, bos, eos, conversations)
    for sub in ["tokenizers/qwen2", "tokenizers/qwen3", "tokenizers/llama3", "stories260K-hf",
                "tokenizers/mistral-v0.1-spm"]:
        mt = model_template(sub)
        if mt is None:
            print("skip %s: no chat_template in tokenizer_config.json" % sub)
            continue
        convs = dict(BASIC)
        if sub.endswith("qwen3"):
            convs.update(QWEN3)
        templates.append((sub, mt[0], mt[1], mt[2], convs))
    for fn in sorted(os.listdir(os.path.join(HERE, "templates"))):
        src = open(os.path.join(HERE, "templates", fn), encoding="utf-8").read()
        convs = dict(BASIC)
        convs.update(ERRORS)
        if fn == "features.jinja":
            convs["tools"] = QWEN3["tools"]
        templates.append((fn, src, "<s>", "</s>", convs))

    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmpdir:
        for name, src, bos, eos, convs in templates:
            with open(os.path.join(tmpdir, "tpl.jinja"), "w", encoding="utf-8") as f:
                f.write(src)
            tpl = env.from_string(src)
            for cname, conv in convs.items():
                for agp in (False, True):
                    ctx = dict(conv) if isinstance(conv, dict) else {"messages": conv}
                    ctx.setdefault("tools", None)
                    ctx.setdefault("documents", None)
                    ctx["add_generation_prompt"] = agp
                    if bos is not None:
                        ctx["bos_token"] = bos
                    if eos is not None:
                        ctx["eos_token"] = eos
                    ok, detail = run_case(driver, tpl, src, ctx, tmpdir)
                    if ok:
                        passed += 1
                    else:
                        failed += 1
                        print("FAIL %s / %s / agp=%s: %s" % (name, cname, agp, detail))

        # Constructs outside the supported subset must be reported, never rendered differently.
        for src, want in [("{% include 'x' %}", "not supported"), ("{% call foo() %}x{% endcall %}", "not supported"),
                          ("{{ x | wordwrap }}", "not supported"), ("{% raw %}x{% endraw %}", "not supported"),
                          ("{% if x %}unclosed", "expected 'endif'"), ("{{ 1 + }}", "expected")]:
            with open(os.path.join(tmpdir, "tpl.jinja"), "w") as f:
                f.write(src)
            with open(os.path.join(tmpdir, "ctx.json"), "w") as f:
                json.dump({"messages": []}, f)
            r = subprocess.run([driver, os.path.join(tmpdir, "tpl.jinja"), os.path.join(tmpdir, "ctx.json")],
                               capture_output=True, timeout=30)
            err = r.stderr.decode()
            if r.returncode != 0 and want in err and "line 1" in err:
                passed += 1
            else:
                failed += 1
                print("FAIL error case %r: rc=%d stderr=%r" % (src, r.returncode, err))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
