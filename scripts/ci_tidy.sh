#!/usr/bin/env bash
# Runs clang-tidy (configuration: .clang-tidy) over every public header through
# tests/tidy/all_headers.cpp, which includes them all and instantiates the templates for float
# and double. Any warning fails the script. Needs clang-tidy (14+), libeigen3-dev, zlib1g-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

tidy=${CLANG_TIDY:-clang-tidy}
echo "== $($tidy --version | grep -i version | head -n 1)"
timeout --signal=KILL "${TIDY_TIMEOUT:-900}" "$tidy" --quiet tests/tidy/all_headers.cpp -- \
  -std=c++17 -Iinclude -I/usr/include/eigen3 -Wall -Wextra
echo "== ci_tidy: clean"
