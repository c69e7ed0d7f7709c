#!/bin/sh
# Build the request-parser fuzzer with clang (libFuzzer + ASan + UBSan) into OUT_DIR and run it
# for SECONDS (default 20) on a copy of the seed corpus. Non-zero exit on a crash.
#   usage: fuzz/fuzz_request.sh OUT_DIR [SECONDS] [extra libFuzzer flags...]
set -eu
out=${1:?usage: fuzz_request.sh OUT_DIR [SECONDS]}
secs=${2:-20}
shift $(( $# >= 2 ? 2 : 1 ))
src=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-clang}
mkdir -p "$out/corpus"
"$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$src/include" -I"$src/src" $(pkg-config --cflags jansson) \
  "$src/fuzz/fuzz_request.c" "$src/src/server/srv_request.c" \
  $(pkg-config --libs jansson) -o "$out/fuzz_request"
cp -n "$src"/fuzz/fuzz_request_corpus/* "$out/corpus/" 2>/dev/null || true
exec "$out/fuzz_request" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$@" "$out/corpus"
