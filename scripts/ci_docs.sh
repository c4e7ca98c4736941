#!/usr/bin/env bash
# Builds and checks dropnet's documentation:
#   1. the guides' code is the tests' code: every `// guide:begin NAME` ... `// guide:end NAME`
#      region of tests/test_custom_layer.cpp appears verbatim (de-indented) as a code block of
#      docs/custom_layer.md (and tests/test_training_loop.cpp in docs/training_loop.md);
#   2. the API reference: Doxygen (docs/Doxyfile) over include/dropnet and the guides fails on
#      any warning: an undocumented public entity, a broken doc comment;
#   3. the reference lists the core free functions: Doxygen drops a namespace's members without
#      a word when the namespace itself has no doc comment, so the generated function index is
#      checked for a few names that must always be there.
#
# Usage: scripts/ci_docs.sh       check; HTML in build/docs/html (or $DROPNET_DOCS_OUT/html)
# Needs: doxygen (Debian package `doxygen`), awk, grep.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d "${TMPDIR:-/tmp}/dropnet-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0

echo "== The guides' code is the tests' code"
# region NAME FILE: the lines between the markers, with their common indentation removed.
region() {
  awk -v name="$1" '
    $0 ~ "^[ \t]*// guide:begin " name "$" { inside = 1; next }
    $0 ~ "^[ \t]*// guide:end " name "$"   { inside = 0; next }
    inside { lines[++n] = $0 }
    END {
      indent = 1000
      for (i = 1; i <= n; i++) if (lines[i] ~ /[^ \t]/) {
        match(lines[i], /^[ ]*/); if (RLENGTH < indent) indent = RLENGTH
      }
      for (i = 1; i <= n; i++) print substr(lines[i], indent + 1)
    }' "$2"
}
# code_blocks MD DIR: writes each fenced code block of MD to DIR/block.N.
code_blocks() {
  awk -v dir="$2" '
    /^```/ { if (inside) { inside = 0; close(file) } else { inside = 1; file = dir "/block." ++n; printf "" > file }; next }
    inside { print > file }' "$1"
}
check_guide() {
  local test_file=$1 guide=$2 name found block
  mkdir -p "$work/blocks"
  code_blocks "$guide" "$work/blocks"
  for name in $(sed -n 's|^[ \t]*// guide:begin \(.*\)$|\1|p' "$test_file"); do
    region "$name" "$test_file" >"$work/region"
    found=no
    for block in "$work"/blocks/block.*; do
      if cmp -s "$work/region" "$block"; then found=yes; fi
    done
    if [[ $found == yes ]]; then
      echo "ok    $guide shows $test_file region '$name'"
    else
      echo "FAIL  $guide has no code block equal to $test_file region '$name':"
      sed 's/^/    | /' "$work/region"
      status=1
    fi
  done
}
check_guide tests/test_custom_layer.cpp docs/custom_layer.md
check_guide tests/test_training_loop.cpp docs/training_loop.md

echo "== API reference (Doxygen)"
version=$(sed -n 's/.*version = "\(.*\)";.*/\1/p' include/dropnet/version.hpp)
out="${DROPNET_DOCS_OUT:-$root/build/docs}"
mkdir -p "$out"
# The Doxyfile's WARN_AS_ERROR = FAIL_ON_WARNINGS fails the run after every warning is logged.
if ! { cat docs/Doxyfile; echo "WARN_LOGFILE = $work/warnings.log"; } |
    DROPNET_DOCS_OUT="$out" DROPNET_VERSION="$version" doxygen - >"$work/doxygen.log" 2>&1; then
  cat "$work/doxygen.log"
  echo "FAIL  doxygen; its warnings (document the public API with /// or /** */ comments):"
  sed -E "s|^$root/||; s/^/    | /" "$work/warnings.log" 2>/dev/null
  exit 1
fi
if [[ -s $work/warnings.log ]]; then  # a Doxygen that ignores FAIL_ON_WARNINGS
  echo "FAIL  Doxygen warnings:"
  sed -E "s|^$root/||; s/^/    | /" "$work/warnings.log"
  exit 1
fi
echo "ok    doxygen: no warning"

# The function index has one line per name, "<li>name() : <a href="namespacedropnet.html#...">"
# with a link per namespace that has it (fashion_mnist has a load() too); dropnet's must be there.
index="$out/html/namespacemembers_func.html"
missing=()
for name in fit evaluate predict mc_predict save load load_into save_weights load_weights \
            gradient_check clip_grad_norm train_step; do
  grep "<li>$name()" "$index" 2>/dev/null | grep -q 'href="namespacedropnet\.html#' ||
    missing+=("$name")
done
if (( ${#missing[@]} )); then
  echo "FAIL  $index lacks ${missing[*]}: is namespace dropnet still documented (version.hpp)?"
  status=1
else
  echo "ok    the reference lists fit, evaluate, predict, mc_predict, save, load, load_into, ..."
  echo "      HTML: $out/html/index.html"
fi
exit $status
