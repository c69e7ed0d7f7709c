"""Checks that the model loader treats a model folder as untrusted input.

Each case writes a malformed copy of a tiny valid Llama folder (config.json +
model.safetensors, or a two-shard variant with model.safetensors.index.json)
into a temp dir and runs
    cllm info -m DIR
    cllm run  -m DIR --prompt-ids 1,2 -n 1 --ids
Both must end cleanly with a non-zero exit status (not a signal, not a
sanitizer report, no hang: each run has a timeout) and a short error on stderr
(at most MAX_STDERR_LINES lines) with one line naming what is wrong: the file
(config.json, model.safetensors, the shard) and, where relevant, the tensor or
config key. The file name matters because a user with a broken download needs
to know which file to fetch again.

Overlapping tensor data is an error (issue #12). Some oddities are legal or at
least harmless (misaligned offsets, unused extra tensors, unowned bytes); for those the engine may succeed or
fail, but must not crash. Two controls (the valid single-file and sharded
folders) must succeed, so an engine that fails everything cannot pass.

Usage: test_bad_files.py CLLM_BINARY   (or CLLM_BIN in the environment)
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import make_tiny_models  # noqa: E402
import safetensors_io as st  # noqa: E402

TIMEOUT = 20
MAX_STDERR_LINES = 3
ST = "model.safetensors"
CFG = "config.json"
INDEX = "model.safetensors.index.json"
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
UP0 = "model.layers.0.mlp.up_proj.weight"  # a required tensor: [inter, hidden]
COMMANDS = {
    "info": ["info"],
    "run": ["run", "--prompt-ids", "1,2", "-n", "1", "--ids"],
}


# ----------------------------------------------------------------------------
# the valid base model and ways to write broken copies of it

def base_model():
    """Config and [(name, array)] of a very small valid Llama (GQA, untied)."""
    return make_tiny_models.llama_like("LlamaForCausalLM", 7, vocab=64, hidden=16, inter=24,
                                       layers=2, heads=2, kv_heads=1)


class Folder:
    """A model folder under construction: config dict, header dict, data bytes."""

    def __init__(self, path):
        cfg, tensors = base_model()
        self.path = path
        self.cfg = cfg
        self.tensors = tensors
        self.header, self.data = st.build([(n, "F32", a) for n, a in tensors], {"format": "pt"})
        os.makedirs(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def write_config(self, text=None):
        with open(self.file(CFG), "w") as f:
            f.write(json.dumps(self.cfg, indent=1) if text is None else text)

    def write_st(self, raw=None, name=ST):
        with open(self.file(name), "wb") as f:
            f.write(st.pack(self.header, self.data) if raw is None else raw)

    def write(self):
        self.write_config()
        self.write_st()

    def write_sharded(self):
        """Split the tensors over two shards and write the index."""
        names = [n for n, _ in self.tensors]
        half = len(names) // 2
        weight_map = {}
        for shard, part in ((SHARD1, names[:half]), (SHARD2, names[half:])):
            st.write(self.file(shard), [(n, "F32", a) for n, a in self.tensors if n in part])
            weight_map.update({n: shard for n in part})
        self.index = {"metadata": {"total_size": len(self.data)}, "weight_map": weight_map}
        with open(self.file(INDEX), "w") as f:
            json.dump(self.index, f, indent=1)
        self.write_config()

    def entry(self, name):
        return self.header[name]


def with_header(edit):
    """Case builder: valid folder, then edit(header dict) before packing."""
    def build(f):
        edit(f.header)
        f.write()
    return build


def with_config(edit):
    def build(f):
        edit(f.cfg)
        f.write()
    return build


def with_raw_st(make_bytes):
    """Case builder: model.safetensors = make_bytes(valid file bytes)."""
    def build(f):
        f.write_config()
        f.write_st(make_bytes(st.pack(f.header, f.data)))
    return build


def set_entry(tensor, **fields):
    def edit(h):
        h[tensor].update(fields)
    return edit


def header_bytes(f):
    return json.dumps(f.header).encode()


# ----------------------------------------------------------------------------
# cases: (name, builder, expectation, mentions)
#   expectation: "error" (clean non-zero exit) or "no_crash" (exit 0 or clean error)
#   mentions: groups of alternatives; one stderr line must contain one string of every group

def single_cases():
    big = 2 ** 62
    return [
        # controls
        ("valid model", lambda f: f.write(), "ok", []),
        ("valid sharded model", lambda f: f.write_sharded(), "ok", []),

        # config.json
        ("missing config.json", lambda f: f.write_st(), "error", [(CFG,)]),
        ("config.json not JSON", lambda f: (f.write_config('{"architectures": [LlamaFor'),
                                            f.write_st()), "error", [(CFG,)]),
        ("config.json empty", lambda f: (f.write_config(""), f.write_st()), "error", [(CFG,)]),
        ("config.json is an array", lambda f: (f.write_config("[1, 2]"), f.write_st()),
         "error", [(CFG,)]),
        ("unknown architecture",
         with_config(lambda c: c.update(architectures=["FooBarForCausalLM"], model_type="foobar")),
         "error", [(CFG,)]),
        # transformers picks the class from model_type, so a junk "architectures" with a
        # good model_type may load; a junk one with nothing else to go on must not
        ("architectures not a list", with_config(lambda c: c.update(architectures=42)),
         "no_crash", []),
        ("architectures not a list, no model_type",
         with_config(lambda c: (c.update(architectures=42), c.pop("model_type"))),
         "error", [(CFG,)]),
        ("no architectures, unknown model_type",
         with_config(lambda c: (c.pop("architectures"), c.update(model_type="foobar"))),
         "error", [(CFG,)]),
        ("missing hidden_size", with_config(lambda c: c.pop("hidden_size")),
         "error", [(CFG,), ("hidden_size",)]),
        ("hidden_size is a string", with_config(lambda c: c.update(hidden_size="16")),
         "error", [(CFG,), ("hidden_size",)]),
        ("num_attention_heads 0", with_config(lambda c: c.update(num_attention_heads=0)),
         "error", [(CFG,)]),
        ("num_key_value_heads 0", with_config(lambda c: c.update(num_key_value_heads=0)),
         "error", [(CFG,)]),
        # hidden 16 / 3 heads: no integral head_dim; caught by config or by q_proj's shape
        ("hidden_size not divisible by heads", with_config(lambda c: c.update(num_attention_heads=3)),
         "error", [(CFG, ST)]),
        ("heads not a multiple of kv heads",
         with_config(lambda c: c.update(num_attention_heads=4, num_key_value_heads=3)),
         "error", [(CFG, ST)]),
        ("num_hidden_layers negative", with_config(lambda c: c.update(num_hidden_layers=-1)),
         "error", [(CFG,)]),
        ("num_hidden_layers huge", with_config(lambda c: c.update(num_hidden_layers=10 ** 9)),
         "error", [(CFG, ST, "model.layers.2.")]),
        ("vocab_size does not match embeddings", with_config(lambda c: c.update(vocab_size=65)),
         "error", [(CFG, "model.embed_tokens.weight", "lm_head.weight")]),
        ("vocab_size huge", with_config(lambda c: c.update(vocab_size=2 ** 40)),
         "error", [(CFG, "model.embed_tokens.weight", "lm_head.weight")]),
        ("unknown rope_scaling type",
         with_config(lambda c: c.update(rope_scaling={"rope_type": "foo-scaling", "factor": 2.0})),
         "error", [(CFG, "rope_scaling", "foo-scaling")]),

        # model.safetensors: framing
        ("missing model.safetensors", lambda f: f.write_config(), "error", [("safetensors",)]),
        ("model.safetensors is a directory",
         lambda f: (f.write_config(), os.makedirs(f.file(ST))), "error", [(ST,)]),
        ("model.safetensors empty", with_raw_st(lambda b: b""), "error", [(ST,)]),
        ("model.safetensors shorter than 8 bytes", with_raw_st(lambda b: b[:5]), "error", [(ST,)]),
        ("header length past end of file",
         with_raw_st(lambda b: (len(b)).to_bytes(8, "little") + b[8:]), "error", [(ST,)]),
        ("header length 2^64-1 (overflow)",
         with_raw_st(lambda b: b"\xff" * 8 + b[8:]), "error", [(ST,)]),
        ("header length 0", with_raw_st(lambda b: b"\0" * 8 + b[8:]), "error", [(ST,)]),
        ("header not JSON", lambda f: (f.write_config(), f.write_st(st.pack(b"{\"a\": nope" + b" " * 6, f.data))),
         "error", [(ST,)]),
        ("header JSON not an object", lambda f: (f.write_config(), f.write_st(st.pack(b"[1,2,3] ", f.data))),
         "error", [(ST,)]),
        ("header cut mid-JSON",
         lambda f: (f.write_config(), f.write_st(st.pack(header_bytes(f)[:-20], f.data))),
         "error", [(ST,)]),
        ("file truncated (last tensor cut)", with_raw_st(lambda b: b[:-1000]), "error", [(ST,)]),

        # model.safetensors: tensor entries
        ("tensor entry not an object", with_header(lambda h: h.update({UP0: 5})),
         "error", [(ST,), (UP0,)]),
        ("unknown dtype I4", with_header(set_entry(UP0, dtype="I4")), "error", [(ST,), (UP0,)]),
        ("integer dtype I32 for a weight", with_header(set_entry(UP0, dtype="I32")),
         "error", [(ST,), (UP0,)]),
        ("dtype missing", with_header(lambda h: h[UP0].pop("dtype")), "error", [(ST,), (UP0,)]),
        ("dtype not a string", with_header(set_entry(UP0, dtype=7)), "error", [(ST,), (UP0,)]),
        ("data_offsets past end of file",
         lambda f: (set_entry(UP0, data_offsets=[len(f.data) - 4, len(f.data) - 4 + 24 * 16 * 4])(f.header),
                    f.write()), "error", [(ST,), (UP0,)]),
        ("data_offsets end < begin",
         lambda f: (set_entry(UP0, data_offsets=f.header[UP0]["data_offsets"][::-1])(f.header), f.write()),
         "error", [(ST,), (UP0,)]),
        ("data_offsets size != shape x dtype",
         lambda f: (set_entry(UP0, data_offsets=[f.header[UP0]["data_offsets"][0],
                                                 f.header[UP0]["data_offsets"][1] - 4])(f.header), f.write()),
         "error", [(ST,), (UP0,)]),
        ("data_offsets negative", with_header(set_entry(UP0, data_offsets=[-1536, 0])),
         "error", [(ST,), (UP0,)]),
        ("data_offsets three numbers", with_header(set_entry(UP0, data_offsets=[0, 1536, 3072])),
         "error", [(ST,), (UP0,)]),
        ("data_offsets strings", with_header(set_entry(UP0, data_offsets=["0", "1536"])),
         "error", [(ST,), (UP0,)]),
        ("data_offsets missing", with_header(lambda h: h[UP0].pop("data_offsets")),
         "error", [(ST,), (UP0,)]),
        # in int64 range, but header + offset wraps or lands far past the end
        ("data_offsets near 2^63 (overflow)",
         with_header(set_entry(UP0, data_offsets=[2 ** 63 - 2000, 2 ** 63 - 2000 + 1536])),
         "error", [(ST,), (UP0,)]),
        ("data_offsets beyond 2^64", with_header(set_entry(UP0, data_offsets=[2 ** 64 + 8, 2 ** 64 + 1544])),
         "error", [(ST,)]),
        ("shape with negative dim", with_header(set_entry(UP0, shape=[-24, -16])),
         "error", [(ST,), (UP0,)]),
        ("shape not a list", with_header(set_entry(UP0, shape="24x16")), "error", [(ST,), (UP0,)]),
        # 2^62 * 4 * 4 bytes wraps to 0 in 64-bit arithmetic: matches empty offsets unless checked
        ("shape product overflows to 0 (unused tensor)",
         lambda f: (f.header.update({"extra.overflow": {"dtype": "F32", "shape": [big, 4],
                                                         "data_offsets": [0, 0]}}), f.write()),
         "error", [(ST,), ("extra.overflow",)]),
        ("shape product overflows (required tensor)",
         lambda f: (set_entry(UP0, shape=[big, 4], data_offsets=[0, 0])(f.header), f.write()),
         "error", [(ST,), (UP0,)]),
        ("shape with 9 dims", with_header(set_entry(UP0, shape=[1, 1, 1, 1, 1, 1, 1, 24, 16])),
         "error", [(UP0,)]),

        # tensor set vs the architecture
        ("missing required tensor", with_header(lambda h: h.pop(UP0)), "error", [(UP0,)]),
        ("missing model.norm.weight", with_header(lambda h: h.pop("model.norm.weight")),
         "error", [("model.norm.weight",)]),
        ("wrong shape (transposed)", with_header(set_entry(UP0, shape=[16, 24])), "error", [(UP0,)]),
        ("wrong rank (flattened)", with_header(set_entry(UP0, shape=[24 * 16])), "error", [(UP0,)]),
        ("wrong shape, same element count",
         with_header(set_entry(UP0, shape=[12, 32])), "error", [(UP0,)]),
        ("norm weight wrong length",
         lambda f: (set_entry("model.norm.weight", shape=[8],
                              data_offsets=[f.header["model.norm.weight"]["data_offsets"][0],
                                            f.header["model.norm.weight"]["data_offsets"][0] + 32])(f.header),
                    f.write()), "error", [("model.norm.weight",)]),

        # issue #12: overlapping data_offsets used to load and run on the wrong bytes
        ("two tensors share the same bytes",
         lambda f: (set_entry("model.layers.1.mlp.up_proj.weight",
                              data_offsets=f.header[UP0]["data_offsets"])(f.header), f.write()),
         "error", [(ST,), ("overlap",), ("model.layers.1.mlp.up_proj.weight", UP0)]),
        ("every tensor at offset 0", all_at_zero, "error", [(ST,), ("overlap",)]),

        # oddities that need not be errors, but must not crash (misaligned data is read correctly:
        # oracle_logits runs such models against the reference)
        ("all tensor data misaligned by 1 byte", misaligned, "no_crash", []),
        ("unused bytes before and after the tensors", padded, "no_crash", []),
        ("unused extra tensor of dtype I64",
         lambda f: (f.header.update({"extra.ids": {"dtype": "I64", "shape": [2],
                                                    "data_offsets": [0, 16]}}), f.write()),
         "no_crash", []),
        ("__metadata__ not an object", with_header(lambda h: h.update({"__metadata__": "x"})),
         "no_crash", []),
        ("duplicate tensor name in header", duplicate_key, "no_crash", []),
        ("untied without lm_head.weight", with_header(lambda h: h.pop("lm_head.weight")),
         "no_crash", []),
    ]


def all_at_zero(f):
    """Every tensor starts at data offset 0 (each keeps its size)."""
    for e in f.header.values():
        if isinstance(e, dict) and "data_offsets" in e:
            e["data_offsets"] = [0, e["data_offsets"][1] - e["data_offsets"][0]]
    f.write()


def misaligned(f):
    """Shift every tensor by one byte: legal for the format, a trap for code that
    casts mmap'd bytes to float* (UBSan reports it; strict-alignment CPUs fault)."""
    for e in f.header.values():
        if isinstance(e, dict) and "data_offsets" in e:
            e["data_offsets"] = [e["data_offsets"][0] + 1, e["data_offsets"][1] + 1]
    f.data = b"\0" + f.data
    f.write()


def padded(f):
    """64 bytes no tensor owns at the start of the data and 64 at the end (the
    reference writer leaves none; alignment is kept)."""
    for e in f.header.values():
        if isinstance(e, dict) and "data_offsets" in e:
            e["data_offsets"] = [e["data_offsets"][0] + 64, e["data_offsets"][1] + 64]
    f.data = b"\x7f" * 64 + f.data + b"\x7f" * 64
    f.write()


def duplicate_key(f):
    text = json.dumps(f.header)
    dup = '"%s": %s, ' % (UP0, json.dumps(f.header[UP0]))
    f.write_config()
    f.write_st(st.pack(("{" + dup + text[1:]).encode(), f.data))


def sharded_cases():
    def drop_shard(f):
        f.write_sharded()
        os.unlink(f.file(SHARD2))

    def truncate_shard(f):
        f.write_sharded()
        with open(f.file(SHARD2), "rb") as fh:
            b = fh.read()
        with open(f.file(SHARD2), "wb") as fh:
            fh.write(b[:-200])

    def index_text(text):
        def build(f):
            f.write_sharded()
            with open(f.file(INDEX), "w") as fh:
                fh.write(text)
        return build

    def edit_index(edit):
        def build(f):
            f.write_sharded()
            idx = copy.deepcopy(f.index)
            edit(idx)
            with open(f.file(INDEX), "w") as fh:
                json.dump(idx, fh)
        return build

    def map_to_absent_tensor(idx):
        # the index promises a tensor that its shard does not contain
        idx["weight_map"]["model.layers.9.mlp.up_proj.weight"] = SHARD2

    def move_tensor(f):
        # the index says shard 1, but the tensor is in shard 2
        f.write_sharded()
        idx = copy.deepcopy(f.index)
        moved = [n for n, s in idx["weight_map"].items() if s == SHARD2][0]
        idx["weight_map"][moved] = SHARD1
        with open(f.file(INDEX), "w") as fh:
            json.dump(idx, fh)

    return [
        ("sharded: index points at a missing shard", drop_shard, "error", [(SHARD2,)]),
        ("sharded: truncated shard", truncate_shard, "error", [(SHARD2,)]),
        ("sharded: index not JSON", index_text("{weight_map"), "error", [(INDEX,)]),
        ("sharded: index without weight_map", index_text('{"metadata": {}}'), "error", [(INDEX,)]),
        ("sharded: weight_map not an object", index_text('{"weight_map": [1]}'), "error", [(INDEX,)]),
        ("sharded: shard name escapes the folder",
         edit_index(lambda i: i["weight_map"].update({UP0: "../no-such-dir/evil.safetensors"})),
         "error", [("evil.safetensors", INDEX)]),
        ("sharded: index entry for a tensor absent from its shard",
         edit_index(map_to_absent_tensor), "no_crash", []),
        ("sharded: index maps a tensor to the wrong shard", move_tensor, "no_crash", []),
    ]


def bad_input_cases():
    """Valid model, bad command-line input: run only."""
    return [
        ("prompt id >= vocab_size", ["run", "--prompt-ids", "1,64", "-n", "1", "--ids"]),
        ("prompt id negative", ["run", "--prompt-ids", "1,-3", "-n", "1", "--ids"]),
        ("prompt id not a number", ["run", "--prompt-ids", "1,x", "-n", "1", "--ids"]),
        ("model folder does not exist", None),
    ]


# ----------------------------------------------------------------------------
# running and judging

def run(binary, args):
    try:
        p = subprocess.run([binary] + args, capture_output=True, text=True, errors="replace",
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "", ""
    return p.returncode, p.stdout, p.stderr


def judge(rc, stderr, expectation, mentions):
    """'' if the outcome is acceptable, else why not."""
    if rc is None:
        return "hung (no exit within %d s)" % TIMEOUT
    if rc < 0:
        return "killed by signal %d" % -rc
    if "Sanitizer" in stderr or "runtime error:" in stderr:
        first = next(l for l in stderr.splitlines() if "ERROR" in l or "runtime error" in l
                     or "Sanitizer" in l)
        return "sanitizer report: " + first.strip()[:300]
    if rc >= 128:
        return "exit status %d (looks like a crash)" % rc
    if expectation == "ok":
        return "" if rc == 0 else "valid input rejected (exit %d): %s" % (rc, stderr.strip()[:300])
    if rc == 0:
        return "" if expectation == "no_crash" else "exit status 0 for a broken model"
    if rc != 1:
        return "exit status %d (the CLI's error exit is 1)" % rc
    lines = [l for l in stderr.splitlines() if l.strip()]
    if not lines:
        return "non-zero exit but nothing on stderr"
    if len(lines) > MAX_STDERR_LINES:
        return "%d lines on stderr (want a short error): %r" % (len(lines), lines[:4])
    if mentions and not any(all(any(s in l for s in group) for group in mentions) for l in lines):
        want = " and ".join("/".join(g) for g in mentions)
        return "error does not name %s: %r" % (want, lines)
    return ""


def main():
    binary = common.cllm_binary(sys.argv)
    t = common.Tally()
    tmp = tempfile.mkdtemp(prefix="cllm-oracle-badfiles-")
    try:
        for i, (name, build, expectation, mentions) in enumerate(single_cases() + sharded_cases()):
            f = Folder(os.path.join(tmp, "case%02d" % i))
            build(f)
            for cmd, args in COMMANDS.items():
                rc, _, err = run(binary, [args[0], "-m", f.path] + args[1:])
                why = judge(rc, err, expectation, mentions)
                shown = (err.strip().splitlines() or [""])[-1][:160]
                print("%-4s %-5s %-50s rc=%-4s %s" % ("ok" if not why else "FAIL", cmd, name, rc, shown),
                      flush=True)
                t.check(not why, "%s: %s" % (cmd, name), why)

        good = Folder(os.path.join(tmp, "good"))
        good.write()
        for name, args in bad_input_cases():
            if args is None:
                args = ["info", "-m", os.path.join(tmp, "no-such-folder")]
                mentions = [("no-such-folder",)]
            else:
                args = [args[0], "-m", good.path] + args[1:]
                mentions = []
            rc, _, err = run(binary, args)
            why = judge(rc, err, "error", mentions)
            shown = (err.strip().splitlines() or [""])[-1][:160]
            print("%-4s %-5s %-50s rc=%-4s %s" % ("ok" if not why else "FAIL", args[0], name, rc, shown),
                  flush=True)
            t.check(not why, name, why)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.finish()


if __name__ == "__main__":
    main()
