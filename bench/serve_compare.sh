#!/bin/sh
# HTTP serving vs the offline engine at the same load: for each concurrency C, `cllm bench
# --serve` (no HTTP) and then bench/load_http.py against `cllm serve` (streamed completions,
# token-id prompts below $VOCAB (151000), ignore_eos, greedy), N requests of P prompt / G output
# tokens. $CLLM: the binary (build/cllm), $PORT: the port (18123).
#   usage: bench/serve_compare.sh MODEL_DIR [N] [P] [G] [C...]   (defaults: 64 128 128 1 8 32)
set -eu
model=${1:?usage: serve_compare.sh MODEL_DIR [N] [P] [G] [C...]}
n=${2:-64}
p=${3:-128}
g=${4:-128}
shift $(( $# >= 4 ? 4 : $# ))
cs=${*:-1 8 32}
here=$(cd "$(dirname "$0")" && pwd)
cllm=${CLLM:-$here/../build/cllm}
port=${PORT:-18123}
for c in $cs; do
  echo "=== concurrency $c: offline (cllm bench --serve) ==="
  "$cllm" bench --serve -m "$model" --requests "$n" --prompt-len "$p" --gen-len "$g" \
    --concurrency "$c" -t 2 --no-single | grep -E "wall|output tokens/s|TTFT ms|TPOT ms"
  echo "=== concurrency $c: HTTP (cllm serve + load_http.py) ==="
  "$cllm" serve -m "$model" --port "$port" -t 2 --quiet --served-model-name bench 2>/dev/null &
  pid=$!
  until python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health')" 2>/dev/null; do
    sleep 0.2
  done
  python3 "$here/load_http.py" --url "http://127.0.0.1:$port" --requests "$n" --prompt-len "$p" \
    --gen-len "$g" --concurrency "$c" --vocab "${VOCAB:-151000}" || true
  kill -TERM "$pid"
  wait "$pid" || true
done
