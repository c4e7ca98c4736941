#!/usr/bin/env bash
# Fuzzes the model loader (load<T>, load_into with and without an optimizer: one target), the IDX
# reader and the safetensors reader (with load_state_dict) with libFuzzer, bounded in time.
#
#   scripts/ci_fuzz.sh                 FUZZ_SECONDS per target (default 60)
#   FUZZ_TARGETS="idx" scripts/ci_fuzz.sh   only the named targets (default: all)
#
# Builds each target in build-fuzz/ with clang++ -fsanitize=fuzzer,address,undefined, replays the
# committed crash reproducers in tests/fuzz/regressions/<target>/, then fuzzes from the seed
# corpus (read only: new inputs go to build-fuzz/corpus/<target>/): for the model targets the
# seeds are generated into build-fuzz/seeds/model by tests/fuzz/make_corpus.cpp (models saved by
# the code under test, nothing committed); for the others tests/fuzz/corpus/<target>/.
# Any crash, sanitizer report, leak, timeout (> 10 s per input) or allocation above 2 GB fails
# the script and leaves the input in build-fuzz/artifacts/: fix the bug, then commit the input to
# tests/fuzz/regressions/<target>/ (test_model_file also replays the model ones). Prints each
# target's executions, executions per second and peak memory (libFuzzer's final stats).
# Needs clang and libclang-rt-dev (libFuzzer, ASan, UBSan), zlib1g-dev, libeigen3-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}
cxx=${FUZZ_CXX:-clang++}
flags=(-std=c++17 -O1 -g1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -fno-omit-frame-pointer -Wall -Wextra -Werror -Iinclude -I/usr/include/eigen3)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/artifacts"

echo "== generating the model seeds in $build/seeds/model"
"$cxx" -std=c++17 -O1 -Iinclude -I/usr/include/eigen3 tests/fuzz/make_corpus.cpp -o "$build/make_corpus"
rm -rf "$build/seeds/model" && "$build/make_corpus" "$build/seeds/model"
seeds_of() { [[ $1 == model ]] && echo "$build/seeds/model" || echo "tests/fuzz/corpus/$1"; }

# name:source:extra link flags
targets=(
  "model:tests/fuzz/fuzz_model_loader.cpp:"
  "idx:tests/fuzz/fuzz_idx_reader.cpp:-lz"
  "safetensors:tests/fuzz/fuzz_safetensors.cpp:"
)

# The last value of libFuzzer's "stat::<name>: <value>" line (-print_final_stats=1), or "".
final_stat() {
  grep -o "stat::$1: *[0-9]*" "$2" | tail -n 1 | grep -o '[0-9]*$' || true
}

summary=()
for entry in "${targets[@]}"; do
  IFS=: read -r name source libs <<<"$entry"
  [[ " ${FUZZ_TARGETS:-$name} " == *" $name "* ]] || continue
  binary="$build/fuzz_$name"
  echo "== building $binary"
  # shellcheck disable=SC2086  # $libs is a (possibly empty) list of flags
  "$cxx" "${flags[@]}" "$source" -o "$binary" $libs

  regressions=(tests/fuzz/regressions/"$name"/*)
  if [[ -e "${regressions[0]}" ]]; then
    echo "== $name: replaying ${#regressions[@]} regression input(s)"
    "$binary" -runs=1 "${regressions[@]}"
  fi

  echo "== $name: fuzzing for ${seconds}s"
  mkdir -p "$build/corpus/$name"
  log="$build/fuzz_$name.log"
  timeout --signal=KILL $((seconds + 120)) "$binary" -max_total_time="$seconds" \
    -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/artifacts/$name-" \
    "$build/corpus/$name" "$(seeds_of "$name")" >"$log" 2>&1 || {
    tail -n 60 "$log"
    echo "ci_fuzz: $name FAILED; reproducer in $build/artifacts/" >&2
    exit 1
  }
  # A slow target finds little: its executions per second are the figure to watch.
  runs=$(final_stat number_of_executed_units "$log")
  [[ -n "$runs" ]] || runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | grep -o '[0-9]*' || true)
  rate=$(final_stat average_exec_per_sec "$log")
  rss=$(final_stat peak_rss_mb "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  summary+=("$name: ${runs:-?} executions in ${seconds}s, ${rate:-?}/s, peak RSS ${rss:-?} MB ($cov)")
  echo "== ${summary[-1]}"
done

echo "== ci_fuzz: all targets clean"
printf '   %s\n' "${summary[@]}"
