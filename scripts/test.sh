#!/usr/bin/env bash
# Build and run the whole test suite (C unit tests + Python oracle tests, all under CTest).
# BUILD_DIR (default build) and CMAKE_ARGS select the build; CLLM_TESTDATA overrides the
# location of the test data (default testdata/ in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# Every test process uses the built-in kernel choices (no calibration, nothing cached); the
# *@SPEC legs force each kernel family in turn (tests/tune_leg.py).
export CLLM_TUNE=${CLLM_TUNE:-off}
cmake -S . -B "$BUILD_DIR" -DCLLM_WERROR=ON ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"
# ctest's summary is kept for scripts/ci_skips.py (which tests were skipped)
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" | tee "$BUILD_DIR/ctest-output.txt"
