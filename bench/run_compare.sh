#!/usr/bin/env bash
# Runs the end-to-end workloads W1-W4 for dropnet, the plain Eigen MLP (bench_training) and
# libtorch (bench/compare/bench_libtorch, when built) and prints the comparison as markdown.
#
#   bench/run_compare.sh [BUILD_DIR] [benchmark flags...]
#     When BUILD_DIR/bench/bench_training_default exists (`--target bench_training_default`: the
#     same workloads at the compiler's default flags, kernels dispatched at run time), its dropnet
#     rows run too, as the "dropnet, default flags" column.
#     BUILD_DIR defaults to ./build, configured with -DDROPNET_BUILD_BENCH=ON and, for the
#     libtorch side, -DDROPNET_BENCH_LIBTORCH=ON with Debian's libtorch-dev and
#     libopenblas0-pthread installed.
#     Extra flags go to both binaries, e.g. --benchmark_filter='W1|W2'.
#   DROPNET_BENCH_SHORT=1   small subset, one epoch: checks the pipeline, not the speed.
#   DROPNET_BENCH_EPOCHS=N  timed epochs per training benchmark (default 6; W3 4).
#   RESULTS_DIR=DIR         where the JSON results go (default BUILD_DIR/bench_results).
#
# Peers run at their fastest: OPENBLAS_CORETYPE is unset so OpenBLAS picks its kernels for this
# CPU (an environment forcing e.g. Haswell would hand libtorch slower AVX2 kernels), and every
# implementation is measured at 1 and 2 threads; the "best" rows compare each at its fastest
# thread count. The two dropnet builds take turns row by row, libtorch runs after them: ratios
# across processes are only as good as the machine was quiet (check `uptime`); ratios inside
# bench_training (dropnet vs plain Eigen) come from one process.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
[[ $# -gt 0 ]] && shift
results="${RESULTS_DIR:-$build/bench_results}"
mkdir -p "$results"

unset OPENBLAS_CORETYPE

training="$build/bench/bench_training"
training_default="$build/bench/bench_training_default"
libtorch="$build/bench/compare/bench_libtorch"
[[ -x "$training" ]] || { echo "run_compare: $training not found (build with -DDROPNET_BUILD_BENCH=ON)" >&2; exit 1; }

# The two-thread rows depend on where the host placed the two vCPUs: the cores' round trip
# (bench_kernels' machine/core_round_trip) is measured before and after, and printed with the table.
kernels="$build/bench/bench_kernels"
round_trip() {  # into $results/round_trip_$1.json
  rm -f "$results/round_trip_$1.json"
  [[ -x "$kernels" ]] || return 0
  "$kernels" --benchmark_filter='machine/core_round_trip' --benchmark_out="$results/round_trip_$1.json" \
    --benchmark_out_format=json >/dev/null 2>&1 || true
}
round_trip before
echo "# load before: $(uptime)" >&2
# bench_training_default is not built by default (EXCLUDE_FROM_ALL): a binary left from an older
# tree would put old code in the "default flags" column.
if [[ -x "$training_default" && "$training_default" -ot "$training" ]]; then
  echo "run_compare: warning: $training_default is older than $training;" \
       "rebuild it: cmake --build $build --target bench_training_default" >&2
  export default_flags_stale=1
fi
# The two dropnet builds take turns, one workload and thread count at a time (the one starting
# alternates), so each default-flags row runs seconds from its native row: the host moving the
# vCPUs apart or another job starting then shows in both, not in their ratio. The round trip is
# measured again once the two-thread rows are done. A filter given to the script replaces the
# turns: each binary runs it once.
rm -f "$results"/dropnet_eigen*.json "$results"/dropnet_default*.json "$results/round_trip_two_threads_done.json"
groups=()
if [[ " $* " == *" --benchmark_filter"* ]]; then
  groups=("all")
else
  # Two threads first, right after the round trip was measured: their rows depend on it.
  for t in 2 1; do
    for w in W1 W2 W3 W4_batch1000 W4_batch1; do groups+=("$w/threads:$t"); done
  done
fi
run_rows() {  # binary, implementations (a regex), group, output, benchmark flags...
  [[ -x "$1" ]] || return 0
  local binary=$1 filter="^W[^/]*/$2/" out=$4
  [[ $3 != all ]] && filter="^${3%%/*}/$2/${3#*/}(/|\$)"
  shift 4
  "$binary" --benchmark_filter="$filter" --benchmark_out="$out" --benchmark_out_format=json "$@" >&2
}
turn=0
for group in "${groups[@]}"; do
  name="${group//[\/:]/_}"
  native=("$training" '[a-z]+' "$group" "$results/dropnet_eigen_$name.json" "$@")
  default=("$training_default" dropnet "$group" "$results/dropnet_default_$name.json" "$@")
  if (( turn++ % 2 == 0 )); then
    run_rows "${native[@]}"; run_rows "${default[@]}"
  else
    run_rows "${default[@]}"; run_rows "${native[@]}"
  fi
  [[ $group == W4_batch1/threads:2 ]] && round_trip two_threads_done
done
if [[ -x "$libtorch" ]]; then
  "$libtorch" --benchmark_out="$results/libtorch.json" --benchmark_out_format=json "$@" >&2
else
  echo "run_compare: $libtorch not built (configure with -DDROPNET_BENCH_LIBTORCH=ON, needs libtorch-dev); table without libtorch" >&2
  rm -f "$results/libtorch.json"
fi
echo "# load after: $(uptime)" >&2
round_trip after

python3 - "$results" <<'EOF'
import glob, json, os, re, sys

results = sys.argv[1]
rows = {}      # (workload, impl, threads) -> value from wall-clock time
cpu_rows = {}  # the same from process CPU time
label = None
context = None
levels = {}    # impl -> the SIMD level and build its rows ran at (bench_training's label)
# In the order they ran: the context (load average, date) printed is the first run's.
paths = sorted(glob.glob(os.path.join(results, "dropnet_eigen_*.json")) +
               glob.glob(os.path.join(results, "dropnet_default_*.json")) +
               glob.glob(os.path.join(results, "libtorch.json")), key=os.path.getmtime)
for path in paths:
    name = os.path.basename(path)
    data = json.load(open(path))
    context = context or data.get("context", {})
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            print(f"> {b['name']}: {b.get('error_message')}")
            continue
        m = re.match(r"(W\d(?:_batch\d+)?)/(\w+)/threads:(\d+)", b["name"])
        if not m:
            continue
        workload, impl, threads = m.group(1), m.group(2), int(m.group(3))
        if name.startswith("dropnet_default"):
            if impl != "dropnet":  # a --benchmark_filter given to the script replaces the binary's
                continue
            impl = "dropnet_default"
        if impl.startswith("dropnet") and b.get("label", "").startswith("simd="):
            levels[impl] = b["label"]
        key = {"W4_batch1000": "images_per_s", "W4_batch1": "us_per_image"}.get(workload, "s_per_epoch")
        if key in b:
            rows[(workload, impl, threads)] = b[key]
        if "cpu_" + key in b:
            cpu_rows[(workload, impl, threads)] = b["cpu_" + key]
        if "label" in b and impl == "libtorch":
            label = b["label"]

impls = [i for i in ("dropnet", "dropnet_default", "eigen", "libtorch")
         if any(k[1] == i for k in rows)]
names = {"dropnet": "dropnet", "dropnet_default": "dropnet, default flags",
         "eigen": "plain Eigen", "libtorch": "libtorch"}
workloads = [("W1", "s/epoch", False), ("W2", "s/epoch", False), ("W3", "s/epoch", False),
             ("W4_batch1000", "images/s", True), ("W4_batch1", "us/image", False)]

def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "images/s":
        return f"{v / 1e6:.3f} M"
    if unit == "us/image":
        return f"{v:.2f}"
    return f"{v:.3f}"

def speedup(d, other, higher_better):
    if d is None or other is None:
        return "-"
    return f"{(d / other if higher_better else other / d):.2f}x"

def table(rows, thread_counts, title):
    print(title)
    print()
    header = ["workload", "unit", "threads"] + [names[i] for i in impls] + \
             [f"dropnet vs {names[i]}" for i in impls if i != "dropnet"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for w, unit, higher in workloads:
        for threads in thread_counts:
            vals = {}
            for i in impls:
                if threads == "best":
                    cand = [(v, t) for (ww, ii, t), v in rows.items() if ww == w and ii == i]
                    vals[i] = (max if higher else min)(cand)[0] if cand else None
                else:
                    vals[i] = rows.get((w, i, threads))
            if all(v is None for v in vals.values()):
                continue
            cells = [w, unit, str(threads)] + [fmt(vals[i], unit) for i in impls] + \
                    [speedup(vals.get("dropnet"), vals[i], higher) for i in impls if i != "dropnet"]
            print("| " + " | ".join(cells) + " |")
    print()
    print("Dropout overhead, W2 / W1 s/epoch (target for dropnet <= 1.15):")
    print()
    print("| threads | " + " | ".join(names[i] for i in impls) + " |")
    print("|---|" + "---|" * len(impls))
    for threads in [t for t in thread_counts if t != "best"]:
        cells = []
        for i in impls:
            a, b = rows.get(("W1", i, threads)), rows.get(("W2", i, threads))
            cells.append(f"{b / a:.2f}" if a and b else "-")
        print(f"| {threads} | " + " | ".join(cells) + " |")
    print()

table(rows, (1, 2, "best"), "## Wall-clock time")
if cpu_rows:
    table({k: v for k, v in cpu_rows.items() if k[2] == 1}, (1,),
          "## Process CPU time, 1 thread (robust to other load on the machine)")
print("'dropnet vs X' = how many times faster dropnet (-march=native) is (> 1: dropnet faster).")
for impl, level in levels.items():
    print(f"{names[impl]}: {level}.")
if label:
    print(f"libtorch BLAS: {label}.")
if context:
    print(f"Host: {context.get('num_cpus')} CPUs at {context.get('mhz_per_cpu')} MHz, "
          f"load average {context.get('load_avg')} at start, date {context.get('date')}.")
if os.environ.get("default_flags_stale"):
    print("Warning: bench_training_default was older than bench_training: its column may be old code.")
def round_trip(when):
    path = os.path.join(results, f"round_trip_{when}.json")
    if not os.path.exists(path):
        return "n/a"
    found = [b["round_trip_ns"] for b in json.load(open(path))["benchmarks"] if "round_trip_ns" in b]
    return f"{found[0]:.0f} ns" if found else "n/a"
print(f"Core-to-core round trip (bench_kernels machine/core_round_trip): "
      f"{round_trip('before')} before, {round_trip('two_threads_done')} after dropnet's "
      f"two-thread rows, {round_trip('after')} after.")
EOF
