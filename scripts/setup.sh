#!/usr/bin/env bash
# Installs what dropnet needs on Debian/Ubuntu, skipping packages already present. Uses sudo when
# not run as root.
#   bash scripts/setup.sh          # the build, the benchmarks, the Fashion-MNIST example
#   bash scripts/setup.sh --tests  # the same plus what the test suite's optional parts need
#                                  # (MPI, the safetensors JSON parser, the PyTorch/ONNX peers)
#   bash scripts/setup.sh --ci     # --tests plus CI's extra checks' tools (.ci/run uses it)
set -euo pipefail

packages=(
  cmake g++ clang make pkg-config
  libeigen3-dev doctest-dev libbenchmark-dev
  zlib1g-dev libcli11-dev gnuplot-nox
  dataset-fashion-mnist
)
tests=(
  # data-parallel training (dropnet::mpi, tests/mpi/)
  libopenmpi-dev openmpi-bin
  # io/safetensors.hpp's JSON parser; the peer checks (tests/peers/): PyTorch, the ONNX checker,
  # Node for ONNX Runtime
  nlohmann-json3-dev python3-torch python3-numpy python3-onnx
)
ci=(
  # sanitizers and libFuzzer (clang's runtimes: the unversioned package follows the default
  # clang), static analysis, the API reference
  libclang-rt-dev clang-tidy doxygen
)
# Node and npm for ONNX Runtime, from Debian unless a Node.js is already there (NodeSource's
# nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null || tests+=(nodejs)
command -v npm >/dev/null || tests+=(npm)
case "${1:-}" in
  --ci) packages+=("${tests[@]}" "${ci[@]}") ;;
  --tests) packages+=("${tests[@]}") ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [--tests|--ci]" >&2; exit 2 ;;
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

# ONNX Runtime for the peer check tests/peers/onnxruntime_check.js: the npm package's CPU
# runtime, at the version package-lock.json pins (ONNXRUNTIME_NODE_INSTALL=skip: no GPU download).
peers="$(dirname "$0")/../tests/peers"
if [[ -n "${1:-}" && ! -d "$peers/node_modules/onnxruntime-node" ]]; then
  echo "setup: npm ci in tests/peers (onnxruntime-node)"
  (cd "$peers" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi
