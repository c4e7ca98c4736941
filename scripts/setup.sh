#!/usr/bin/env bash
# Installs what dropnet's build, tests, benchmarks and examples need on Debian/Ubuntu, skipping
# packages already present. Uses sudo when not run as root.
#   bash scripts/setup.sh        # build, tests, benchmarks, the Fashion-MNIST example
#   bash scripts/setup.sh --ci   # the same plus CI's extra checks' tools (.ci/run uses it)
set -euo pipefail

packages=(
  cmake g++ clang make pkg-config
  libeigen3-dev doctest-dev libbenchmark-dev
  zlib1g-dev libcli11-dev gnuplot-nox
  dataset-fashion-mnist
  # data-parallel training (dropnet::mpi, tests/mpi/)
  libopenmpi-dev openmpi-bin
)
case "${1:-}" in
  --ci)
    # sanitizers and libFuzzer (clang's runtimes: the unversioned package follows the default
    # clang), static analysis, the API reference
    packages+=(libclang-rt-dev clang-tidy doxygen) ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [--ci]" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
  as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo)
  echo "setup: installing ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
