#!/usr/bin/env bash
# Builds and runs tests/consumer (a small program that defines, trains and evaluates an MLP) the
# ways a user takes dropnet, outside dropnet's tree:
#   find_package     `cmake --install` into a temporary prefix, then find_package(dropnet CONFIG)
#   subdirectory     add_subdirectory(<dropnet>)
#   fetch_dir        FetchContent with SOURCE_DIR <dropnet>
#   fetch_url        FetchContent with URL file://<archive of dropnet's sources>
#   pkg-config       one line: $CXX ... main.cpp $(pkg-config --cflags dropnet)
#   compiled         find_package, linking dropnet::compiled instead of header-only dropnet::dropnet
# each with g++ and clang++, C++17 and C++20, -O0 and -O3 -march=native, all with
# -Wall -Wextra -Wpedantic -Werror. Also checks the package's version file (SameMajorVersion),
# that no public header includes <iostream>, a g++ -O2 build with default flags (no -march)
# that must select the CPU's SIMD level at run time, the no-install one-liner
# (-I<dropnet>/include $(pkg-config --cflags eigen3)), and measures the compile time of the
# consumer's translation unit (umbrella header + training a small MLP) with g++ -O2.
#
# Usage: scripts/ci_consumers.sh [--quick | --ci]
#   (none)   every mode x compiler x standard x optimization (40 builds; before a release)
#   --ci     every mode with g++ C++17 -O0, and the whole compiler x standard x optimization
#            product through add_subdirectory (12 builds; what .ci/run runs)
#   --quick  g++, C++17, -O0 only, every mode (for development)
# DROPNET_INSTALL_FROM=<build dir of dropnet, default options, built>: install from it instead of
# configuring and building dropnet::compiled here (.ci/run passes the README build's directory).
# Needs: cmake, g++, clang++, pkg-config, libeigen3-dev (scripts/setup.sh installs them).
# Everything is built -j1 in a temporary directory that is removed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
consumer="$root/tests/consumer"
work=$(mktemp -d "${TMPDIR:-/tmp}/dropnet-consumers.XXXXXX")
trap 'rm -rf "$work"' EXIT

compilers=(g++ clang++)
standards=(17 20)
optimizations=("-O0" "-O3 -march=native")
matrix=full
if [[ ${1:-} == --quick ]]; then
  compilers=(g++)
  standards=(17)
  optimizations=("-O0")
elif [[ ${1:-} == --ci ]]; then
  matrix=ci
fi
warnings="-Wall -Wextra -Wpedantic -Werror"
# flags CXX OPT: the warning and optimization flags of one build. GCC before 13 warns
# -Wmaybe-uninitialized inside its own avx512fintrin.h (`__m512 __Y = __Y;`, GCC bug 105593)
# wherever AVX-512 intrinsics are inlined, which -march=native does on an AVX-512 machine: that
# warning (only) is off there, as in bench/CMakeLists.txt.
flags() {
  local cxx=$1 opt=$2 extra=""
  if [[ $opt == *-march=native* ]] && "$cxx" --version | head -n 1 | grep -q '^g++' &&
    (($("$cxx" -dumpversion | cut -d. -f1) < 13)); then
    extra=" -Wno-maybe-uninitialized -Wno-uninitialized"
  fi
  echo "$warnings $opt$extra"
}

passed=0
failed=0
failures=()
# check NAME LOG COMMAND...: runs COMMAND with its output in LOG and records the result.
check() {
  local name=$1 log=$2
  shift 2
  local start=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    printf 'ok    %-52s %3ds\n' "$name" $((SECONDS - start))
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf 'FAIL  %-52s (log below)\n' "$name"
    sed 's/^/    | /' "$log" | tail -n 60
  fi
}

echo "== Public headers do not include <iostream>"
no_iostream() { ! grep -rn '#include <iostream>' "$root/include"; }
check "no <iostream> in include/dropnet" "$work/iostream.log" no_iostream

echo "== Install into a temporary prefix"
prefix="$work/prefix"
install_dropnet() {
  # DROPNET_INSTALL_FROM=<build dir>: install what that build (default options) already built, as
  # .ci/run does with the README's build; else configure and build here, README's commands at
  # Debug (-O0, the cheapest build of dropnet::compiled, which the package installs).
  local build=${DROPNET_INSTALL_FROM:-$work/dropnet-build}
  if [[ -z ${DROPNET_INSTALL_FROM:-} ]]; then
    cmake -S "$root" -B "$build" -DDROPNET_BUILD_TESTS=OFF -DDROPNET_BUILD_BENCH=OFF \
      -DDROPNET_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Debug &&
      cmake --build "$build" -j1 || return 1
  fi
  cmake --install "$build" --prefix "$prefix" &&
    ls "$prefix"/lib*/libdropnet.a &&
    test -f "$prefix/include/dropnet/dropnet.hpp" &&
    test -f "$prefix/share/dropnet/cmake/dropnetConfig.cmake" &&
    test -f "$prefix/share/dropnet/cmake/dropnetConfigVersion.cmake" &&
    test -f "$prefix/share/dropnet/cmake/dropnetTargets.cmake" &&
    test -f "$prefix/share/pkgconfig/dropnet.pc"
}
check "cmake --install" "$work/install.log" install_dropnet
export PKG_CONFIG_PATH="$prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

echo "== Version file (SameMajorVersion): 0.1 is found, 1.0 is not"
version_check() {
  mkdir -p "$work/version-check"
  cat >"$work/version-check/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(version_check NONE)
find_package(dropnet 0.1 CONFIG REQUIRED)
message(STATUS "found dropnet ${dropnet_VERSION}")
find_package(dropnet 1.0 CONFIG QUIET)
if(dropnet_FOUND)
  message(FATAL_ERROR "find_package(dropnet 1.0) accepted version ${dropnet_VERSION}")
endif()
EOF
  cmake -S "$work/version-check" -B "$work/version-check/build" -DCMAKE_PREFIX_PATH="$prefix"
}
check "find_package version compatibility" "$work/version.log" version_check

echo "== Source archive for FetchContent URL mode"
archive="$work/dropnet-src.tar.gz"
tar -czf "$archive" -C "$root" --transform 's,^,dropnet/,' CMakeLists.txt cmake include src LICENSE

# build_cmake MODE CXX STD OPT: configures (again, keeping compiler detection) and builds the
# consumer in one build directory per mode and compiler, then runs it.
build_cmake() {
  local mode=$1 cxx=$2 std=$3 opt=$4 dir="$work/build-$1-$2"
  local args=(-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_STANDARD="$std" -DCMAKE_CXX_EXTENSIONS=OFF
    -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="$(flags "$cxx" "$opt")")
  case $mode in
    find_package) args+=(-DDROPNET_MODE=find_package -DCMAKE_PREFIX_PATH="$prefix") ;;
    compiled) args+=(-DDROPNET_MODE=find_package -DCMAKE_PREFIX_PATH="$prefix"
      -DDROPNET_TARGET=dropnet::compiled) ;;
    subdirectory) args+=(-DDROPNET_MODE=subdirectory -DDROPNET_SOURCE_DIR="$root") ;;
    fetch_dir) args+=(-DDROPNET_MODE=fetchcontent -DDROPNET_SOURCE_DIR="$root") ;;
    fetch_url) args+=(-DDROPNET_MODE=fetchcontent -DDROPNET_URL="file://$archive") ;;
  esac
  cmake -S "$consumer" -B "$dir" "${args[@]}" &&
    cmake --build "$dir" -j1 &&
    grep -q -- "-std=c++$std" "$dir/CMakeFiles/consumer.dir/flags.make" &&
    "$dir/consumer"
}

# build_pkg_config CXX STD OPT: the README's one-liner against the installed dropnet.pc.
build_pkg_config() {
  local cxx=$1 std=$2 opt=$3 out="$work/consumer-pc-$1-$2-${3//[ =]/_}"
  # shellcheck disable=SC2046,SC2086
  "$cxx" -std=c++$std $(flags "$cxx" "$opt") "$consumer/main.cpp" $(pkg-config --cflags dropnet) \
    -o "$out" && "$out"
}

# consume MODE CXX STD OPT: one build of the consumer, recorded by check.
consume() {
  local mode=$1 cxx=$2 std=$3 opt=$4
  if [[ $mode == pkg-config ]]; then
    check "pkg-config $cxx c++$std $opt" "$work/log" build_pkg_config "$cxx" "$std" "$opt"
  else
    check "$mode $cxx c++$std $opt" "$work/log" build_cmake "$mode" "$cxx" "$std" "$opt"
  fi
}

modes=(find_package subdirectory fetch_dir fetch_url pkg-config compiled)
echo "== Consumer matrix"
if [[ $matrix == ci ]]; then
  # Every way of taking dropnet once, then every compiler x standard x optimization through one
  # of them: the headers do not depend on how they were found, so the full product adds time,
  # not coverage.
  for mode in "${modes[@]}"; do consume "$mode" g++ 17 "-O0"; done
  for cxx in "${compilers[@]}"; do
    for std in "${standards[@]}"; do
      for opt in "${optimizations[@]}"; do
        [[ $cxx == g++ && $std == 17 && $opt == -O0 ]] || consume subdirectory "$cxx" "$std" "$opt"
      done
    done
  done
else
  for cxx in "${compilers[@]}"; do
    for std in "${standards[@]}"; do
      for opt in "${optimizations[@]}"; do
        for mode in "${modes[@]}"; do consume "$mode" "$cxx" "$std" "$opt"; done
      done
    done
  done
fi

echo "== Without installing: -I<dropnet>/include \$(pkg-config --cflags eigen3)"
no_install() {
  # shellcheck disable=SC2046,SC2086
  g++ -std=c++17 $warnings -O0 -I"$root/include" $(pkg-config --cflags eigen3) \
    "$consumer/main.cpp" -o "$work/consumer-no-install" && "$work/consumer-no-install"
}
check "g++ -I<dropnet>/include (no install)" "$work/log" no_install

echo "== Default flags (no -march): the runtime dispatch selects the CPU's level"
# The level /proc/cpuinfo's flags give (avx512f; avx2 with fma; else baseline), which the
# consumer compiled for the x86-64 baseline must select and agree with (tests/consumer/main.cpp).
cpu_level() {
  local flags
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  if [[ $flags == *" avx512f"* ]]; then
    echo avx512
  elif [[ $flags == *" avx2"* && $flags == *" fma"* ]]; then
    echo avx2
  else
    echo baseline
  fi
}
# The compile time of the umbrella-header TU is that build's: tests/consumer/main.cpp includes
# <dropnet/dropnet.hpp> and trains and evaluates an MLP header-only (scripts/compile_time.sh
# measures the README program both ways, on a quiet machine). CPU = user + sys seconds, which is
# what a compile costs on an idle machine; wall time grows with whatever else runs.
default_flags() {
  local TIMEFORMAT='%R %U %S' timing
  # shellcheck disable=SC2046,SC2086
  timing=$({ time g++ -std=c++17 $warnings -O2 -I"$root/include" $(pkg-config --cflags eigen3) \
    "$consumer/main.cpp" -o "$work/consumer-default" 2>&3; } 3>&2 2>&1) || return 1
  awk '{ printf "umbrella TU compile and link (g++ -O2): %.1f s CPU, %.1f s wall\n", $2 + $3, $1 }' \
    <<<"$timing" >"$work/umbrella-time"
  DROPNET_CONSUMER_EXPECT_SIMD=$(cpu_level) "$work/consumer-default"
}
check "g++ -O2 default flags selects $(cpu_level)" "$work/log" default_flags
cat "$work/umbrella-time" 2>/dev/null || true

echo "== Summary"
((failed == 0)) || printf 'failed: %s\n' "${failures[@]}"
echo "consumers: $passed passed, $failed failed"
((failed == 0))
