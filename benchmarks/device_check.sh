#!/usr/bin/env bash
# The GPU path, checked on a CUDA machine in at most BUDGET_S seconds (default 600), from the repo root:
#
#   bash benchmarks/device_check.sh                  # CUDA machine: prints a markdown section for BENCHMARKS.md
#   bash benchmarks/device_check.sh --dry            # this CPU (DEVICE=cpu), small sizes: every step runs
#                                                      (budget 1800 s: ~20 min on a loaded 2-core machine)
#   bash benchmarks/device_check.sh --dry --tiny     # the smallest sizes: what tests/test_device_check.py runs
#                                                      (a few minutes), so a change elsewhere cannot rot a step
#
# Steps (each under `timeout`, failures reported in the section, the script goes on):
#   0 environment   python with torch, snakemake, zarr; `make install` first if they are missing
#   1 machine       nvidia-smi, torch / CUDA / cuDNN versions, date
#   2 tf32          TF32 switches inside the kernel path; float32 ConvNet pNTK vs float64
#   3 pytest -m gpu the gpu-marked tests
#   4 rate          ResNet-18 pNTK pairs/s per tile size, FLOP rate as a fraction of the fp32 peak
#     conv          the default ConvNet's eNTK, cnn-bench's eNTK, a ResNet-18 pNTK tile: seconds of auto,
#                   structured and jacobian (the conv kernels on the device)
#     regression    Nyström-PCG on a resident Θ (device memory) and the same solve streamed from its store
#   5 workflow      configs/cifar10-fcn-gpu-check.yaml on synthetic CIFAR-10 (5000/1000), then
#                   `pntk plan --compare` of its log (planned vs measured time per rule)
#   6 bench_kernels.py --device cuda --models c
#   7 bench_regression.py --device cuda --sizes 50000 ($BENCH_REGRESSION_ARGS appended)
# Environment: DEVICE (cuda; cpu with --dry), BUDGET_S, OUT (work folder, default /tmp/pntk-device-check),
# PYTHON (default .venv/bin/python if present, else python3), CORES (default: all).
# What it measured goes to $OUT/measured.json; on a GPU (not --dry) also to the cache `pntk plan` reads
# ($PNTK_CACHE_DIR or ~/.cache/pntk, device-<profile>.json): its GPU lines then use the measured kernel
# rate and regression pass rate instead of COSTS' assumptions, and say so.
set -u -o pipefail

DRY=0 TINY=0
for arg in "$@"; do
  case $arg in
    --dry) DRY=1 ;;
    --tiny) DRY=1 TINY=1 ;;
    *) echo "unknown argument $arg (expected --dry, --tiny)" >&2; exit 2 ;;
  esac
done
DEVICE=${DEVICE:-$([ $DRY = 1 ] && echo cpu || echo cuda)}
BUDGET_S=${BUDGET_S:-$([ $DRY = 1 ] && echo 1800 || echo 600)}  # a 2-core CPU needs longer for the dry run
OUT=${OUT:-/tmp/pntk-device-check}
CORES=${CORES:-$(nproc)}
REPO=$(pwd)
[ -f "$REPO/Snakefile" ] && [ -d "$REPO/src/pntk" ] || { echo "run from the repository root" >&2; exit 2; }
mkdir -p "$OUT/logs"
: > "$OUT/steps.tsv"
T0=$(date +%s)
PLAN_CACHE=${PNTK_CACHE_DIR:-$HOME/.cache/pntk}  # where `pntk plan` looks for measured device profiles
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PNTK_CACHE_DIR="$OUT/cache"

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; elif [ -x .venv/bin/python ]; then echo .venv/bin/python; else echo python3; fi
}
PY=$(pick_python)

left() { echo $(( BUDGET_S - ($(date +%s) - T0) )); }

# step NAME CAP_SECONDS CMD...: run under timeout min(CAP, budget left - 10); log to $OUT/logs/NAME.log;
# record status, seconds and the command's RESULT lines (or its last line) in steps.tsv.
step() {
  local name=$1 cap=$2; shift 2
  local limit=$(( $(left) - 10 )); [ "$limit" -gt "$cap" ] && limit=$cap
  if [ "$limit" -lt 10 ]; then
    printf '%s\tskipped (budget)\t0\t\n' "$name" >> "$OUT/steps.tsv"; return 1
  fi
  local t=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$? status=ok
  [ $rc = 124 ] || [ $rc = 137 ] && status="timed out after ${limit} s"
  [ $rc != 0 ] && [ "$status" = ok ] && status="FAILED (exit $rc)"
  local summary
  summary=$(grep '^RESULT ' "$OUT/logs/$name.log" | sed 's/^RESULT //' | paste -sd ';' -)
  [ -z "$summary" ] && summary=$(grep -v '^\s*$' "$OUT/logs/$name.log" | tail -n 1 | cut -c1-300)
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t ))" "$summary" >> "$OUT/steps.tsv"
  echo "[device_check] $name: $status ($(( $(date +%s) - t )) s)" >&2
  [ $rc = 0 ]
}

# 0 environment: the device machine has the repository but maybe not its Python packages.
if ! "$PY" -c "import torch, snakemake, zarr, pntk" 2> /dev/null; then
  step install 400 make install && PY=.venv/bin/python
fi
SNAKEMAKE="$(dirname "$(command -v "$PY")")/snakemake"
[ -x "$SNAKEMAKE" ] || SNAKEMAKE=snakemake

# 1–4
step machine 60 "$PY" benchmarks/device_check.py info --device "$DEVICE"
step tf32 60 "$PY" benchmarks/device_check.py tf32 --device "$DEVICE"
step pytest_gpu 120 "$PY" -m pytest tests -m gpu -q -rs -p no:cacheprovider
MEASURED="$OUT/measured.json"
rm -f "$MEASURED"
if [ $DRY = 1 ]; then
  step rate 60 "$PY" benchmarks/device_check.py rate --device "$DEVICE" --sizes 2 4 --budget 10 --gemm 512 \
    --record "$MEASURED"
  step conv 120 "$PY" benchmarks/device_check.py conv --device "$DEVICE" --sizes "$([ $TINY = 1 ] && echo 8 || echo 32)" \
    --record "$MEASURED"
  step regression 120 "$PY" benchmarks/device_check.py regression --device "$DEVICE" \
    --sizes "$([ $TINY = 1 ] && echo 300 || echo 2000)" --record "$MEASURED"
else
  step rate 90 "$PY" benchmarks/device_check.py rate --device "$DEVICE" --sizes 256 512 1024 2048 4096 --budget 60 \
    --record "$MEASURED"
  step conv 90 "$PY" benchmarks/device_check.py conv --device "$DEVICE" --sizes 200 1024 --record "$MEASURED"
  step regression 90 "$PY" benchmarks/device_check.py regression --device "$DEVICE" --sizes 20000 50000 \
    --record "$MEASURED"
fi

# 5 workflow: synthetic CIFAR-10, the cut-down config, then the plan against the run's own log
WF="$OUT/workflow"
rm -rf "$WF" && mkdir -p "$WF"
if [ $TINY = 1 ]; then N_TRAIN=120 N_TEST=40 SUBSETS="subset_train: 30, subset_test: 20, "
elif [ $DRY = 1 ]; then N_TRAIN=500 N_TEST=100 SUBSETS="subset_train: 100, subset_test: 50, "
else N_TRAIN=5000 N_TEST=1000 SUBSETS=""; fi
cat > "$WF/overlay.yaml" <<EOF
results: $WF/results
data: {${SUBSETS}root: $WF/cifar10-synthetic, verify_md5: false, train_size: $N_TRAIN, test_size: $N_TEST}
EOF
if [ $DRY = 1 ]; then  # tiny and on the CPU: every rule still runs
  cat >> "$WF/overlay.yaml" <<EOF
train: {epochs: 1, checkpoint_epochs: [0, 1], device: cpu}
kernels: {tile_size: $([ $TINY = 1 ] && echo 64 || echo 256), device: cpu}
regression: {device: cpu}
timing: {resnet_depths: [18], repeats: 5, device: cpu}
infinite: {widths: [32], n_points: 8}
EOF
fi
if [ $TINY = 1 ]; then  # the smallest network that still runs every rule
  echo "models: [{arch: fcn, depth: 3, widths: [32]}]" >> "$WF/overlay.yaml"
fi
workflow() {  # run by `timeout` through bash -c, hence exported with its variables
  "$PY" -m pntk.cli synth cifar10 --out "$WF/cifar10-synthetic" --train "$N_TRAIN" --test "$N_TEST" &&
  "$PY" benchmarks/device_check.py merge configs/cifar10-fcn-gpu-check.yaml "$WF/overlay.yaml" "$WF/config.yaml" &&
  "$SNAKEMAKE" -s "$REPO/Snakefile" --directory "$WF" --configfile "$WF/config.yaml" --cores "$CORES" \
    --resources gpu=1 --scheduler greedy &&
  echo "RESULT jobs: $(grep -c '^Finished jobid' "$WF"/.snakemake/log/*.snakemake.log)"
}
export -f workflow
export PY WF N_TRAIN N_TEST SNAKEMAKE REPO CORES
step workflow $([ $DRY = 1 ] && echo 720 || echo 300) bash -c workflow
GPU_PROFILE=$(grep -o 'plan profile: [a-z0-9-]*' "$OUT/logs/machine.log" | cut -d' ' -f3)
[ "$DEVICE" = cpu ] || [ -z "$GPU_PROFILE" ] || [ "$GPU_PROFILE" = unknown ] && GPU_PROFILE=cpu
LOG=$(ls -t "$WF"/.snakemake/log/*.snakemake.log 2> /dev/null | head -n 1)
if [ "$GPU_PROFILE" != cpu ] && [ -s "$MEASURED" ]; then  # the plan below prices the GPU with this run's numbers
  mkdir -p "$PNTK_CACHE_DIR" && cp "$MEASURED" "$PNTK_CACHE_DIR/device-$GPU_PROFILE.json"
fi
step plan_vs_run 60 "$PY" -m pntk.cli plan --config "$WF/config.yaml" --device "$GPU_PROFILE" --cores "$CORES" \
  --compare "${LOG:-missing-log}"

# 6–7 the engineers' benchmarks, with what time is left
if [ $TINY = 1 ]; then
  step bench_kernels 120 "$PY" benchmarks/bench_kernels.py --device "$DEVICE" --models a --repeats 1 --min-time 0 \
    --max-n 8
  step bench_regression 120 "$PY" benchmarks/bench_regression.py --device "$DEVICE" --sizes 300 --test 50 \
    --tile 128 --repeats 1 ${BENCH_REGRESSION_ARGS:-}
elif [ $DRY = 1 ]; then
  step bench_kernels 420 "$PY" benchmarks/bench_kernels.py --device "$DEVICE" --models a --repeats 1 --min-time 0
  step bench_regression 120 "$PY" benchmarks/bench_regression.py --device "$DEVICE" --sizes 1000 --test 100 \
    ${BENCH_REGRESSION_ARGS:-}
else
  step bench_kernels 120 "$PY" benchmarks/bench_kernels.py --device "$DEVICE" --models c --repeats 1 --min-time 0
  step bench_regression 240 "$PY" benchmarks/bench_regression.py --device "$DEVICE" --sizes 50000 \
    ${BENCH_REGRESSION_ARGS:-}
fi

# What `pntk plan` uses: recorded for the GPU profile this machine matches (never from a --dry run on a CPU)
if [ $DRY = 0 ] && [ -s "$MEASURED" ] && [ -n "$GPU_PROFILE" ] && [ "$GPU_PROFILE" != cpu ]; then
  mkdir -p "$PLAN_CACHE" && cp "$MEASURED" "$PLAN_CACHE/device-$GPU_PROFILE.json" &&
    echo "[device_check] recorded $PLAN_CACHE/device-$GPU_PROFILE.json for pntk plan --device $GPU_PROFILE" >&2
fi

# The section for benchmarks/BENCHMARKS.md
info() { grep "^RESULT $1: " "$OUT/logs/machine.log" 2> /dev/null | head -n 1 | sed "s/^RESULT $1: //"; }
{
  echo "## Device check"
  echo
  echo "\`bash benchmarks/device_check.sh$([ $DRY = 1 ] && echo ' --dry')\` (device $DEVICE, budget $BUDGET_S s, used $(( $(date +%s) - T0 )) s)."
  echo "Machine: **$(info host)**, $(info cpu); GPU (nvidia-smi): **$(info 'gpu (nvidia-smi)')**;"
  echo "torch $(info torch), CUDA $(info 'cuda (torch build)'), cuDNN $(info cudnn). Date: **$(info date)**."
  echo "Logs: \`$OUT/logs/\`; measured values: \`$MEASURED\`."
  echo
  echo "| step | status | s | result |"
  echo "|---|---|---:|---|"
  while IFS=$'\t' read -r name status secs summary; do
    echo "| $name | $status | $secs | ${summary//|/\\|} |"
  done < "$OUT/steps.tsv"
  if [ -s "$OUT/logs/plan_vs_run.log" ]; then
    echo
    echo "Planned vs measured time per rule of the cut-down workflow (\`pntk plan --compare\`):"
    echo
    echo '```'
    sed -n '/^against /,$p' "$OUT/logs/plan_vs_run.log"
    echo '```'
  fi
} | tee "$OUT/section.md"
NOT_OK=$(awk -F'\t' '$2 != "ok"' "$OUT/steps.tsv" | wc -l)
[ "$NOT_OK" = 0 ] || { echo "[device_check] $NOT_OK step(s) not ok: see $OUT/steps.tsv" >&2; exit 1; }
