#!/usr/bin/env bash
# Compile time of tests/compile_time/train_save_load.cpp (README's first model: trains an MLP,
# saves it and load<float>s it back), header-only, against dropnet::compiled, and against
# dropnet::compiled with <dropnet/dropnet.hpp> precompiled (what CMake's
# target_precompile_headers does: the header built once, force-included before the source), with
# each compiler at -O2 in one run: CPU seconds (user + system) and peak memory of the compile
# (/usr/bin/time -v). Each program is then linked and run (it checks its own results).
#
#   scripts/compile_time.sh [compiler...]     default: g++ clang++
#   DROPNET_COMPILED_A=<path/libdropnet.a>    reuse a built dropnet::compiled (else built here
#                                             with the first compiler, -O2, and timed too)
# Not run by CI (minutes of CPU); README's "Compile time" table comes from it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source="$root/tests/compile_time/train_save_load.cpp"
work=$(mktemp -d "${TMPDIR:-/tmp}/dropnet-compile-time.XXXXXX")
trap 'rm -rf "$work"' EXIT
compilers=("$@")
((${#compilers[@]})) || compilers=(g++ clang++)
flags=(-std=c++17 -O2 -I"$root/include" -isystem /usr/include/eigen3)

# measure LABEL COMMAND...: one line "LABEL  CPU s  peak MB".
measure() {
  local label=$1
  shift
  /usr/bin/time -v "$@" 2>"$work/time.log" >/dev/null || { cat "$work/time.log"; exit 1; }
  awk -v label="$label" -F': ' '
    /User time/ {u = $2} /System time/ {s = $2} /Maximum resident/ {m = $2}
    END {printf "%-48s %7.1f s CPU %7.0f MB\n", label, u + s, m / 1024}' "$work/time.log"
}

uptime
library=${DROPNET_COMPILED_A:-}
if [[ -z $library ]]; then
  for unit in dropnet_float dropnet_double kernels; do
    measure "dropnet::compiled, src/${unit}.cpp (${compilers[0]})" "${compilers[0]}" \
      "${flags[@]}" -DDROPNET_COMPILED_LIB -c "$root/src/${unit}.cpp" -o "$work/$unit.o"
  done
  ar rcs "$work/libdropnet.a" "$work/dropnet_float.o" "$work/dropnet_double.o" "$work/kernels.o"
  library="$work/libdropnet.a"
fi
# precompiled CXX: builds <dropnet/dropnet.hpp> as CXX's precompiled header (DROPNET_COMPILED_LIB)
# and sets pch_flags to the flags that make a compile use it. GCC takes a .gch found beside the
# name it includes, when that is the first include (-include makes it so; the symlink lets the
# source's own #include find the same file, which #pragma once then skips); clang, -include-pch.
precompiled() {
  local cxx=$1 dir="$work/pch-$1"
  mkdir -p "$dir/dropnet"
  if [[ $cxx == *clang* ]]; then
    measure "$cxx -O2, precompiling the header" "$cxx" "${flags[@]}" -DDROPNET_COMPILED_LIB \
      -x c++-header "$root/include/dropnet/dropnet.hpp" -o "$dir/dropnet.pch"
    pch_flags=(-include-pch "$dir/dropnet.pch")
  else
    ln -sf "$root/include/dropnet/dropnet.hpp" "$dir/dropnet/dropnet.hpp"
    measure "$cxx -O2, precompiling the header" "$cxx" "${flags[@]}" -DDROPNET_COMPILED_LIB \
      -x c++-header "$root/include/dropnet/dropnet.hpp" -o "$dir/dropnet/dropnet.hpp.gch"
    pch_flags=("-I$dir" -include dropnet/dropnet.hpp -Winvalid-pch)
  fi
}

for cxx in "${compilers[@]}"; do
  measure "$cxx -O2, header-only" "$cxx" "${flags[@]}" -c "$source" -o "$work/header_only.o"
  measure "$cxx -O2, with dropnet::compiled" "$cxx" "${flags[@]}" -DDROPNET_COMPILED_LIB \
    -c "$source" -o "$work/compiled.o"
  precompiled "$cxx"
  measure "$cxx -O2, with dropnet::compiled and the PCH" "$cxx" "${pch_flags[@]}" "${flags[@]}" \
    -DDROPNET_COMPILED_LIB -c "$source" -o "$work/precompiled.o"
  "$cxx" "$work/header_only.o" -o "$work/header_only"
  "$cxx" "$work/compiled.o" "$library" -o "$work/compiled"
  "$cxx" "$work/precompiled.o" "$library" -o "$work/precompiled"
  for program in header_only compiled precompiled; do
    "$work/$program" >/dev/null || { echo "compile_time: $program failed its own check"; exit 1; }
  done
done
uptime
