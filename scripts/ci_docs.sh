#!/usr/bin/env bash
# Builds and checks dropnet's documentation:
#   1. the guides' code is the tests' code: every `// guide:begin NAME` ... `// guide:end NAME`
#      region of tests/test_custom_layer.cpp appears verbatim (de-indented) as a code block of
#      docs/custom_layer.md (and tests/test_training_loop.cpp in docs/training_loop.md);
#   2. the API reference: Doxygen (docs/Doxyfile) over include/dropnet and the guides, every
#      warning an error, undocumented public API included. Public API that was undocumented
#      when this gate was introduced is listed in docs/undocumented.txt and tolerated; anything
#      else fails: a warning not in the list (new undocumented API, a broken doc comment). Entries
#      that are now documented are reported, to be removed so the list only shrinks. Once the
#      list is empty the Doxyfile's WARN_AS_ERROR applies unchanged.
#
# Usage: scripts/ci_docs.sh                   check; HTML in build/docs/html
#        scripts/ci_docs.sh --update-list     rewrite docs/undocumented.txt from the headers
# Needs: doxygen (Debian package `doxygen`), awk, diff.
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
list=docs/undocumented.txt
# Warnings are collected (WARN_AS_ERROR = NO) and judged here against the list; with an empty
# list, the Doxyfile runs as it is.
if [[ -s $list || ${1:-} == --update-list ]]; then
  overrides=$'WARN_AS_ERROR = NO\nWARN_LOGFILE = '"$work/warnings.log"
else
  overrides=$'WARN_LOGFILE = '"$work/warnings.log"
fi
if ! { cat docs/Doxyfile; echo "$overrides"; } |
    DROPNET_DOCS_OUT="$out" DROPNET_VERSION="$version" doxygen - >"$work/doxygen.log" 2>&1; then
  cat "$work/doxygen.log" "$work/warnings.log" 2>/dev/null
  echo "FAIL  doxygen"
  exit 1
fi
# A warning without its line number, which moves with every edit: "path: message".
sed -E "s|^$root/||; s|^([^:]+):[0-9]+: (warning\|error): |\1: |" "$work/warnings.log" |
  grep -v '^$' | LC_ALL=C sort -u >"$work/warnings"
if [[ ${1:-} == --update-list ]]; then
  cp "$work/warnings" "$list"
  echo "wrote $list: $(wc -l <"$list") entries"
  exit 0
fi
touch "$work/allowed"
[[ -f $list ]] && LC_ALL=C sort -u "$list" >"$work/allowed"
new=$(LC_ALL=C comm -23 "$work/warnings" "$work/allowed")
fixed=$(LC_ALL=C comm -13 "$work/warnings" "$work/allowed")
if [[ -n $new ]]; then
  echo "FAIL  Doxygen warnings (document the public API with /// or /** */ comments):"
  sed 's/^/    | /' <<<"$new"
  status=1
fi
if [[ -n $fixed ]]; then
  echo "note  now documented: remove these lines from $list (scripts/ci_docs.sh --update-list):"
  sed 's/^/    | /' <<<"$fixed"
fi
if [[ -z $new ]]; then
  echo "ok    doxygen: no new warning; $(LC_ALL=C comm -12 "$work/warnings" "$work/allowed" | wc -l) undocumented entities left in $list"
  echo "      HTML: $out/html/index.html"
fi
exit $status
