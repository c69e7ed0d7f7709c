#!/bin/sh
# fuzz_gguf.sh BUILD_DIR SECONDS - build the GGUF libFuzzer target with clang into BUILD_DIR, make the
# seed corpus and fuzz the GGUF reader for SECONDS (ctest runs it with 20; see README for longer).
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=$1
secs=${2:-20}
CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target fuzz_gguf >/dev/null
mkdir -p "$build/corpus"
/usr/bin/python3 "$here/make_seeds.py" "$build/seeds"
"$build/fuzz_gguf" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$build/corpus" "$build/seeds"
