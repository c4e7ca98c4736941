#!/usr/bin/env bash
# The Fashion-MNIST example's published figures. Every accuracy, study figure and run time that
# README.md, examples/fashion_mnist/README.md and the example's --help quote is a line of
# examples/fashion_mnist/figures.txt, written by a run of this script, so a document cannot
# quietly disagree with the code:
#
#   bash scripts/example_figures.sh regen BINARY [RUN...]  # rerun RUNs (default: all), rewrite
#                                                          # their values in figures.txt
#   bash scripts/example_figures.sh check BINARY           # CI: the quotes, then the fast runs
#                                                          # against figures.txt with tolerance
#   bash scripts/example_figures.sh quotes BINARY          # the quotes only (no training)
#
# BINARY is the built example (build/examples/fashion_mnist/fashion_mnist). Runs use the
# installed data (/usr/share/datasets/fashion-mnist, or DROPNET_FASHION_MNIST_DIR), one thread,
# seed 42, under nice -n 10; times are the run's wall and CPU seconds as bash's `time` measures
# them, and regen records the load average beside them.
#
# The runs. Fast (CI reruns them on every check, about 6 s of CPU): seed. Slow (a developer
# reruns them with regen after changing what they measure; their figures are only quote-checked
# in CI): mc, best, dropout, l2, uncertainty, uncertainty_best, search, cnn, spatial, lstm.
#
# figures.txt, one figure a line:   name | value | CI check | quoted as | in
#   CI check  "abs D": |measured - value| <= D;  "factor F": value/F <= measured <= value*F;
#             "-": not rerun in CI (a slow run's figure)
#   quoted as the text the documents hold, {} standing for the value; compared with runs of
#             white space squeezed to one space, so a quote may wrap across lines
#   in        files from the repository root, and "help" for the example's --help output
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
figures="$root/examples/fashion_mnist/figures.txt"
fast_runs=(seed)
slow_runs=(mc best dropout l2 uncertainty uncertainty_best search cnn spatial lstm)

usage() {
  echo "usage: bash scripts/example_figures.sh regen|check|quotes BINARY [RUN...]" >&2
  exit 2
}

# The example's arguments for one run (besides --progress lines).
run_arguments() {
  case "$1" in
    seed) echo "" ;;
    mc) echo "--preset seed-dropout --mc-samples 30" ;;
    best) echo "--preset best" ;;
    dropout) echo "--study dropout --plot $root/docs/figures/dropout_study.png" ;;
    l2) echo "--study l2" ;;
    uncertainty) echo "--study uncertainty" ;;
    uncertainty_best)
      echo "--study uncertainty --preset best --plot $root/docs/figures/uncertainty_best.png" ;;
    search) echo "--search compare --trials 32 --epochs 5" ;;
    cnn) echo "--preset cnn" ;;
    spatial) echo "--study spatial" ;;
    lstm) echo "--preset lstm" ;;
    *) echo "example_figures: no run named '$1'" >&2; exit 2 ;;
  esac
}

trim() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$1"; }
squeeze() { tr -d '|' | tr -s '[:space:]' ' '; }  # '|': table separators, and figures.txt's

# Runs RUN into $work/RUN.log and writes "wall cpu load" (seconds, seconds, 1-minute load
# average) into $work/RUN.times.
run_example() {
  local run=$1 load
  load=$(cut -d' ' -f1 /proc/loadavg)
  # shellcheck disable=SC2046  # the arguments are words
  { TIMEFORMAT='%R %U %S'; time nice -n 10 "$binary" $(run_arguments "$run") --progress lines \
      >"$work/$run.log" 2>&1; } 2>"$work/$run.time" ||
    { cat "$work/$run.log" >&2; echo "example_figures: run '$run' failed" >&2; exit 1; }
  awk -v load="$load" '{ printf "%.1f %.1f %s\n", $1, $2 + $3, load }' "$work/$run.time" \
    >"$work/$run.times"
}

# A study table's row for LABEL, without its two time columns (wall, CPU) when it has them.
table_row() {
  grep -m1 -- "^$2 " "$1" | sed -E 's/ +[0-9]+ +[0-9]+$//' | squeeze | sed 's/ $//'  # squeeze ends it with the newline's space
}
# The first capture of sed expression EXPR in LOG.
capture() { sed -nE "s#$2#\\1#p" "$1" | head -1; }
round() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
minutes() { awk -v x="$1" 'BEGIN { printf "%.0f", x / 60 }'; }

# "name<TAB>value" lines for RUN from its log and times.
extract() {
  local run=$1 wall=$2 cpu=$3 load=$4 log="$work/$1.log"
  printf '%s.wall_seconds\t%s\n%s.cpu_seconds\t%s\n%s.load\t%s\n' "$run" "$(round "$wall")" \
    "$run" "$(round "$cpu")" "$run" "$load"
  printf '%s.wall_minutes\t%s\n%s.cpu_minutes\t%s\n' "$run" "$(minutes "$wall")" "$run" \
    "$(minutes "$cpu")"
  local test_accuracy='^Test: loss [0-9.]+, accuracy ([0-9.]+).*'
  case "$run" in
    seed | best | cnn)
      printf '%s.accuracy\t%s\n' "$run" "$(capture "$log" "$test_accuracy")" ;;
    lstm)
      printf 'lstm.accuracy\t%s\n' "$(capture "$log" "$test_accuracy")"
      # The last epoch's validation accuracy, from its progress line (a percentage there).
      printf 'lstm.valid_accuracy\t%s\n' "$(grep -E 'epoch +[0-9]+/[0-9]+ .* valid loss ' "$log" | tail -1 |
        sed -nE 's/.* valid loss [0-9.]+ acc ([0-9.]+)%.*/\1/p' |
        awk '{ printf "%.4f", $1 / 100 }')" ;;
    mc)
      printf 'mc.accuracy\t%s\n' "$(capture "$log" "$test_accuracy")"
      printf 'mc.mean_accuracy\t%s\n' "$(capture "$log" '.*MC mean ([0-9.]+).*')"
      printf 'mc.certain_accuracy\t%s\n' "$(capture "$log" '.*most certain 90%.*accuracy ([0-9.]+)')"
      printf 'mc.uncertain_accuracy\t%s\n' \
        "$(capture "$log" '.*least certain 10%.*accuracy ([0-9.]+)')" ;;
    dropout)
      printf 'dropout.row_none\t%s\n' "$(table_row "$log" "no dropout")"
      printf 'dropout.row_notebook\t%s\n' "$(table_row "$log" "dropout 0.25/0.4/0.4")"
      printf 'dropout.row_half\t%s\n' "$(table_row "$log" "dropout 0.5/0.5/0.5")"
      printf 'dropout.none_best_epoch\t%s\n' \
        "$(capture "$log" '^no dropout +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ \(([0-9]+)\).*')"
      printf 'dropout.none_rise\t%s\n' \
        "$(capture "$log" '^no dropout +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ \([0-9]+\) +[0-9.]+ +\+([0-9]+)\.[0-9]%.*')"
      printf 'dropout.notebook_best_epoch\t%s\n' \
        "$(capture "$log" '^dropout 0.25/0.4/0.4 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ \(([0-9]+)\).*')" ;;
    l2)
      local label
      for label in "no L2" "L2 1e-05" "L2 0.0001" "L2 0.001"; do
        printf 'l2.row_%s\t%s\n' "${label// /_}" "$(table_row "$log" "$label")"
      done ;;
    uncertainty | uncertainty_best)
      printf '%s.temperature\t%s\n' "$run" \
        "$(capture "$log" '^(Temperature fitted on the validation set: .*)')"
      printf '%s.concrete_rates\t%s\n' "$run" "$(capture "$log" '^Concrete dropout: learned rates ([^ ]+).*')"
      local method
      for method in plain temperature ensemble "MC dropout" "Concrete dropout"; do
        printf '%s.row_%s\t%s\n' "$run" "${method// /_}" "$(table_row "$log" "$method")"
      done ;;
    search)
      printf 'search.row_grid\t%s\n' "$(grep -m1 -E '^grid +32 ' "$log" | awk '{ print $4, $5 }')"
      # The same two figures as README.md words them: validation / test.
      printf 'search.best_grid\t%s\n' \
        "$(grep -m1 -E '^grid +32 ' "$log" | awk '{ print $4 " / " $5 }')"
      printf 'search.best_random\t%s\n' \
        "$(grep -m1 -E '^random +32 ' "$log" | awk '{ print $4 " / " $5 }')"
      printf 'search.row_random\t%s\n' \
        "$(grep -m1 -E '^random +32 ' "$log" | awk '{ print $4, $5 }')" ;;
    spatial)
      local conv row rows=""
      for conv in none "standard 0.1" "spatial 0.1"; do
        row=$(table_row "$log" "conv dropout $conv")
        rows+="$row"$'\n'
        printf 'spatial.row_%s\t%s\n' "${conv%% *}" "$row"
        # As the documents' sentences quote them: the test accuracy as a fraction, and the
        # eval-mode train - valid gap in points without its sign (the row's last column).
        printf 'spatial.test_%s\t%s\n' "${conv%% *}" \
          "$(awk '{ printf "%.4f", $(NF - 6) / 100 }' <<<"$row")"
        printf 'spatial.gap_%s\t%s\n' "${conv%% *}" "$(awk '{ sub(/^\+/, "", $NF); print $NF }' <<<"$row")"
      done
      # The spread of the three test accuracies, in points and in images (100 a point of 10,000).
      local spread
      spread=$(awk 'NF { t = $(NF - 6); if (n++ == 0 || t > hi) hi = t; if (n == 1 || t < lo) lo = t }
        END { printf "%.2f", hi - lo }' <<<"$rows")
      printf 'spatial.test_spread\t%s\nspatial.test_spread_images\t%s\n' "$spread" \
        "$(round "$(awk -v s="$spread" 'BEGIN { print s * 100 }')")" ;;
  esac
}

# Prints "name|value|check|quote|files" for each figure line of figures.txt.
figure_lines() {
  grep -v -e '^#' -e '^[[:space:]]*$' "$figures"
}

# Rewrites the values of the names in $work/new.tsv, keeping every other column and line.
update_figures() {
  local line name value check quote files new
  while IFS= read -r line; do
    if [[ $line == \#* || -z ${line// /} ]]; then printf '%s\n' "$line"; continue; fi
    IFS='|' read -r name value check quote files <<<"$line"
    name=$(trim "$name")
    new=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$work/new.tsv" | tail -1)
    if [[ -n $new ]]; then
      [[ $new == "$(trim "$value")" ]] || echo "  $name: $(trim "$value") -> $new" >&2
      value=" $new "
    fi
    printf '%s |%s|%s|%s|%s\n' "$name" "$value" "$check" "$quote" "$files"
  done <"$figures" >"$work/figures.txt"
  cp "$work/figures.txt" "$figures"
}

# The text a quote template stands for: {} is the figure's value, {name} another figure's.
expand_quote() {
  local text=${1//\{\}/$2} key
  while [[ $text =~ \{([A-Za-z0-9_.-]+)\} ]]; do
    key=${BASH_REMATCH[1]}
    text=${text//"{$key}"/${values[$key]-"<no figure $key>"}}
  done
  squeeze <<<"$text" | sed 's/ $//'
}

# Every figure quoted where figures.txt says; prints each missing quote and fails if one is.
check_quotes() {
  local name value check quote files file text where missing=0
  declare -gA values=()
  while IFS='|' read -r name value _; do values[$(trim "$name")]=$(trim "$value"); done \
    < <(figure_lines)
  "$binary" --help 2>&1 | squeeze >"$work/help.txt"
  while IFS='|' read -r name value check quote files; do
    name=$(trim "$name"); value=$(trim "$value"); quote=$(trim "$quote")
    text=$(expand_quote "$quote" "$value")
    for file in $files; do
      where="$root/$file"
      [[ $file == help ]] && where="$work/help.txt"
      if ! squeeze <"$where" | grep -qF -- "$text"; then
        echo "example_figures: $file does not quote $name as '$text'" >&2
        missing=1
      fi
    done
  done < <(figure_lines)
  ((missing == 0)) && echo "example_figures: every figure is quoted as figures.txt says"
  return "$missing"
}

# The figures of runs already in $work/new.tsv that carry a CI check, against figures.txt.
check_tolerances() {
  local name value check measured failed=0
  while IFS='|' read -r name value check _; do
    name=$(trim "$name"); value=$(trim "$value"); check=$(trim "$check")
    [[ $check == "-" ]] && continue
    measured=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$work/new.tsv")
    [[ -n $measured ]] || continue
    if awk -v m="$measured" -v v="$value" -v c="$check" 'BEGIN {
         split(c, k, " ");
         if (k[1] == "abs") exit !((m - v <= k[2]) && (v - m <= k[2]));
         if (k[1] == "factor") exit !(m >= v / k[2] && m <= v * k[2]);
         exit 1 }'; then
      echo "example_figures: $name measured $measured, published $value ($check): ok"
    else
      echo "example_figures: $name measured $measured, published $value: outside $check" >&2
      failed=1
    fi
  done < <(figure_lines)
  return "$failed"
}

main() {
  (($# >= 2)) || usage
  mode=$1 binary=$2
  shift 2
  [[ -x $binary ]] || { echo "example_figures: '$binary' is not an executable" >&2; exit 2; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  : >"$work/new.tsv"

  case "$mode" in
    quotes) check_quotes ;;
    check)
      status=0
      check_quotes || status=1
      for run in "${fast_runs[@]}"; do
        run_example "$run"
        read -r wall cpu load <"$work/$run.times"
        echo "example_figures: run '$run': ${wall} s wall, ${cpu} s of CPU, load average $load"
        extract "$run" "$wall" "$cpu" "$load" >>"$work/new.tsv"
      done
      check_tolerances || status=1
      exit "$status" ;;
    regen)
      runs=("$@")
      ((${#runs[@]})) || runs=("${fast_runs[@]}" "${slow_runs[@]}")
      mkdir -p "$root/docs/figures"
      for run in "${runs[@]}"; do
        run_arguments "$run" >/dev/null
        echo "example_figures: running '$run': fashion_mnist $(run_arguments "$run")"
        run_example "$run"
        read -r wall cpu load <"$work/$run.times"
        echo "  ${wall} s wall, ${cpu} s of CPU, load average $load"
        mkdir -p "$root/build/example_figures"
        cp "$work/$run.log" "$work/$run.times" "$root/build/example_figures/"
        extract "$run" "$wall" "$cpu" "$load" >>"$work/new.tsv"
      done
      update_figures
      echo "example_figures: figures.txt updated; logs in build/example_figures/"
      check_quotes || echo "example_figures: update the documents above to the new figures" ;;
    *) usage ;;
  esac
}

# One line, read whole before it runs: the script may be edited while a long regen runs.
main "$@"; exit
