#!/bin/sh
# fuzz_loaders.sh BUILD_DIR SECONDS TARGET - build the loader fuzz targets with clang (fuzz/
# CMakeLists.txt: libFuzzer + ASan + UBSan) into BUILD_DIR and run TARGET (fuzz_safetensors or
# fuzz_tokenizer) for SECONDS on a copy of its committed seed corpus (fuzz/TARGET_corpus).
# An input slower than -timeout or larger in memory than -rss_limit_mb is a finding (non-zero
# exit), like a crash: loaders must be linear in their input. ctest runs 20 seconds of each.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: fuzz_loaders.sh BUILD_DIR SECONDS TARGET}
secs=${2:-20}
target=${3:?usage: fuzz_loaders.sh BUILD_DIR SECONDS TARGET}
shift $(( $# >= 3 ? 3 : $# ))
CC=${CC:-clang} cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target "$target" >/dev/null
mkdir -p "$build/corpus-$target"
cp -n "$here/${target}_corpus"/* "$build/corpus-$target/" 2>/dev/null || true
exec "$build/$target" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$@" "$build/corpus-$target"
