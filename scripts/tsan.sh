#!/usr/bin/env bash
# ThreadSanitizer leg (.ci/run): clang -fsanitize=thread build of the library and of the tests of
# the multithreaded parts - the thread pool (tests/base), the engine's run loop and submit/cancel
# from other threads, prefix cache and generation (tests/engine), and the HTTP server under load
# (tests/server/load_test.py with the sanitizer-sized request count) - then those tests only.
# A data race report fails the test (halt_on_error). Needs clang; usage: scripts/tsan.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build-tsan}
export CLLM_TUNE=off
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66"
if ! command -v clang >/dev/null; then
  echo "tsan.sh: clang is not installed (needed for -fsanitize=thread)" >&2
  exit 1
fi
CC=clang cmake -S . -B "$BUILD_DIR" -DCLLM_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLLM_WERROR=ON
TESTS="test_threadpool test_engine_run test_engine_generate test_engine_prefix test_engine_limits"
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j"$(nproc)" --target cllm_cli $TESTS
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" \
  -R "^(test_threadpool|test_engine_run|test_engine_generate|test_engine_prefix|test_engine_limits|server_load)$"
