#!/usr/bin/env bash
# compare_llama.sh - cllm vs llama.cpp on the same files, side by side, on this CPU.
#
#   bench/compare_llama.sh LLAMA_BENCH MODEL [MODEL...]
#
# LLAMA_BENCH: the path of a llama-bench binary that you built yourself (this script never builds
# or downloads llama.cpp). MODEL: a .gguf file (both engines load it), or HF_DIR=GGUF: cllm loads
# the Hugging Face folder, llama.cpp its GGUF twin (e.g. written by `cllm quantize HF_DIR GGUF
# bf16`). For every model the two engines run alternately, ROUNDS times each; the script prints
# the CPU model, the load average and membw before and after, every run's t/s, and per test the
# median of each engine and the ratio cllm / llama.cpp.
#
# Environment: THREADS (2), P (512: prompt tokens), N (128: generated tokens), REPS (3: llama-bench
# -r and cllm bench -r), ROUNDS (2), CLLM (build/cllm), MEMBW (a membw binary; default: built from
# ../shared/tools/membw.c into a temporary folder when that file and gcc exist; skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
LLAMA_BENCH=$1
shift
THREADS=${THREADS:-2} P=${P:-512} N=${N:-128} REPS=${REPS:-3} ROUNDS=${ROUNDS:-2}
CLLM=${CLLM:-build/cllm}
[ -x "$LLAMA_BENCH" ] || { echo "compare_llama.sh: $LLAMA_BENCH is not an executable" >&2; exit 2; }
[ -x "$CLLM" ] || { echo "compare_llama.sh: $CLLM not built (cmake --build build)" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "${MEMBW:-}" ] && [ -f ../shared/tools/membw.c ] && command -v gcc >/dev/null; then
  gcc -O3 -march=native -fopenmp -o "$TMP/membw" ../shared/tools/membw.c 2>/dev/null && MEMBW=$TMP/membw
fi

membw() {
  if [ -n "${MEMBW:-}" ]; then
    "$MEMBW" 512 3 "$THREADS" 2>/dev/null | grep '^threads' | sed 's/^/  membw: /' || true
  else
    echo "  membw: not available (set MEMBW=path)"
  fi
}

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $THREADS threads"
echo "before: load $(cut -d' ' -f1-3 /proc/loadavg)"
membw
"$CLLM" info -m "${1%%=*}" --kernels -t "$THREADS" 2>/dev/null | grep -E '^(cpu|kernels)' | sed 's/^/  cllm /'

# "| ... | pp512 | 123.45 ± 1.20 |" -> "pp512 123.45"
rows() { grep -E '\| *(pp|tg)[0-9]+ *\|' | awk -F'|' '{gsub(/ /,"",$(NF-2)); split($(NF-1),v," "); print $(NF-2), v[1]}'; }

for spec in "$@"; do
  cllm_model=${spec%%=*}
  llama_model=${spec#*=}
  echo
  echo "== $cllm_model (cllm) vs $llama_model (llama.cpp)"
  : >"$TMP/c.txt"
  : >"$TMP/l.txt"
  for r in $(seq 1 "$ROUNDS"); do
    "$CLLM" bench -m "$cllm_model" -p "$P" -n "$N" -t "$THREADS" -r "$REPS" 2>/dev/null | rows >>"$TMP/c.txt"
    "$LLAMA_BENCH" -m "$llama_model" -p "$P" -n "$N" -t "$THREADS" -r "$REPS" 2>/dev/null | rows >>"$TMP/l.txt"
  done
  for test in pp$P tg$N; do
    c=$(awk -v t=$test '$1==t{print $2}' "$TMP/c.txt" | sort -n | tr '\n' ' ')
    l=$(awk -v t=$test '$1==t{print $2}' "$TMP/l.txt" | sort -n | tr '\n' ' ')
    awk -v t=$test -v c="$c" -v l="$l" 'function med(s,  a,n){n=split(s,a," "); if(!n) return 0;
        return n%2 ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2}
      BEGIN{mc=med(c); ml=med(l); printf "  %-6s cllm %8.2f t/s [%s]  llama.cpp %8.2f t/s [%s]  ratio %.2fx\n",
        t, mc, c, ml, l, (ml > 0 ? mc / ml : 0)}'
  done
done
echo
echo "after: load $(cut -d' ' -f1-3 /proc/loadavg)"
membw
