#!/usr/bin/env python3
"""The server and the CLI use only the public API.

Every #include of src/server/*.[ch] and src/cli/*.[ch] must be a system header or one of: "cllm.h",
"base/..." (the shared utilities), the file's own folder ("server/...", "cli/..."), and for the CLI
"server/server.h" (the server's entry point, itself on cllm.h only). Anything else (model/,
tokenizer/, chat/, kernels/, engine/, kv/, io/, relative paths) is printed as FILE:LINE: TEXT and
fails the check.

usage: check_includes.py SOURCE_ROOT      check the tree (exit 1 on a violation)
       check_includes.py --self-test      check that a planted violation is caught
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]*)[>"]')
INTERNAL = ("model/", "tokenizer/", "chat/", "kernels/", "engine/", "kv/", "io/")
FOLDERS = {"server": ("server/",), "cli": ("cli/", "server/server.h")}


def allowed(folder, bracket, path):
    if ".." in path.split("/"):
        return False
    if bracket == "<":  # system headers; <cllm.h> is fine, <model/...> is not
        return not path.startswith(INTERNAL)
    if path == "cllm.h" or path.startswith("base/"):
        return True
    return any(path == a if a.endswith(".h") else path.startswith(a) for a in FOLDERS[folder])


def check(root):
    bad, n_files = [], 0
    for folder in FOLDERS:
        d = os.path.join(root, "src", folder)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            n_files += 1
            path = os.path.join(d, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m and not allowed(folder, m.group(1), m.group(2)):
                        bad.append(f"src/{folder}/{name}:{lineno}: {line.rstrip()}")
    return bad, n_files


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        for folder in FOLDERS:
            os.makedirs(os.path.join(tmp, "src", folder))
        ok = '#include "cllm.h"\n#include "base/error.h"\n#include <stdio.h>\n'
        open(os.path.join(tmp, "src/cli/good.c"), "w").write(ok + '#include "server/server.h"\n')
        open(os.path.join(tmp, "src/server/good.h"), "w").write(ok + '#include "server/srv_job.h"\n')
        bad, _ = check(tmp)
        assert bad == [], bad
        cases = ['#include "model/model.h"', '#  include "tokenizer/tokenizer.h"',
                 '#include <chat/chat_prompt.h>', '#include "../engine/sampler.h"',
                 '#include "server/srv_job.h"', '#include "kv/kv_cache.h"', '#include "io/gguf.h"']
        for i, case in enumerate(cases):
            where = "src/cli/bad.c" if i % 2 == 0 or "server/" in case else "src/server/bad.h"
            open(os.path.join(tmp, where), "w").write(ok + case + "\n")
            bad, _ = check(tmp)
            assert len(bad) == 1 and bad[0].endswith(case) and ":4: " in bad[0], (case, bad)
            os.remove(os.path.join(tmp, where))
    print(f"check_includes self-test: {len(cases)} planted violations caught")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bad, n_files = check(sys.argv[1])
    for b in bad:
        print(f"internal header outside cllm.h / base/ / own folder: {b}")
    if bad:
        return 1
    print(f"check_includes: {n_files} files of src/server and src/cli use only cllm.h, base/ and "
          "their own headers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
