#!/usr/bin/env bash
# Builds the test suite with AddressSanitizer + UndefinedBehaviorSanitizer (clang by default) in
# its own build directory and runs it; any sanitizer report fails the run.
#
#   scripts/ci_sanitize.sh             SANITIZE_CXX=g++ to use gcc; JOBS=n for parallel builds
#
# Only the tests are built (no benchmarks, no examples), at -O1 with assertions on (Eigen's
# bounds checks included) and line tables only (-g1: what the reports print; full -g costs 13%
# more compile time and three times the object size). The tests that compute in dropnet::compiled
# are built at -O0 (DROPNET_TEST_COMPILE_OPTIONS, tests/CMakeLists.txt): clang took 10.0 s of CPU
# for test_fit.cpp at -O1 and 5.3 s at -O0, and its run went from 1.2 to 2.0 s; the library, the
# kernel tests and the tests that instantiate what they check stay at -O1 (test_gemm at -O0: 11 s
# to compile instead of 56, 62 s to run instead of 6). The -march=native copies of the SIMD tests
# are left out: the runtime dispatch already runs the CPU's best kernels in the default build,
# and each copy costs about a minute of compilation under the sanitizers. Needs clang and
# libclang-rt-dev (or g++ with libasan/libubsan),
# cmake, libeigen3-dev, doctest-dev, zlib1g-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${SANITIZE_BUILD_DIR:-build-sanitize}
cxx=${SANITIZE_CXX:-clang++}
jobs=${JOBS:-2}
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g1 $sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
  -DDROPNET_BUILD_TESTS=ON -DDROPNET_BUILD_BENCH=OFF -DDROPNET_BUILD_EXAMPLES=OFF \
  -DDROPNET_TESTS_NATIVE=OFF -DDROPNET_TEST_COMPILE_OPTIONS=-O0
timeout --signal=KILL "${BUILD_TIMEOUT:-3600}" cmake --build "$build" -j"$jobs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Tests find their data (e.g. tests/fuzz/corpus) relative to the repository root.
ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout "${TEST_TIMEOUT:-900}"
echo "== ci_sanitize: clean"
