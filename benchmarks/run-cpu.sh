#!/usr/bin/env bash
# One CPU run, ours beside libtorch on the same cores: for every step `brainseg bench --device cpu`, then
# benchmarks/peers/torch_peer.py (2 threads) for the same step, one process per measurement so that each
# peak memory is that step's own, then one table (native/device/bench_table.py). Needs a built
# artifacts/bin/brainseg (./build.sh) and a python3 with torch (Debian: apt install python3-torch).
# Usage: benchmarks/run-cpu.sh [OUT_DIR]      (default artifacts/bench-cpu; the table is OUT_DIR/table.txt)
# Environment: BATCHES (training batch sizes, default "8 32"), REPS (default 10), VOLUME (segment side,
# default 48), TORCH_PYTHON (default: the first of python3, /usr/bin/python3 that imports torch).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/artifacts/bench-cpu}"
batches="${BATCHES:-8 32}" reps="${REPS:-10}" volume="${VOLUME:-48}"
brainseg="$root/artifacts/bin/brainseg"
[[ -x "$brainseg" ]] || { echo "run-cpu: $brainseg not found: run ./build.sh first" >&2; exit 2; }
torch_python="${TORCH_PYTHON:-}"
if [[ -z "$torch_python" ]]; then
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then torch_python="$p"; break; fi
    done
fi
mkdir -p "$out"
log="$out/runs.jsonl"; : > "$log"

# The measurements: step, batch, repetitions and (conv) dilation, the same for both sides (an adversarial iteration
# is three steps: half the repetitions). The single layers run at the first batch size: the conv layer with
# dilation 1 and 16 (the dilated network's extremes) and batch norm + ReLU.
runs=()
for b in $batches; do runs+=("fcn $b $reps" "dilated $b $reps"); done
first_batch="${batches%% *}"
runs+=("adversarial $first_batch $(( (reps + 1) / 2 ))" "segment 16 $reps")
runs+=("conv $first_batch $reps 1" "conv $first_batch $reps 16" "batchnorm $first_batch $reps")

{
    echo "# $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) logical cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/header.txt"

[[ -n "$torch_python" ]] || echo "run-cpu: no python3 with torch found (set TORCH_PYTHON): the table has our side only" >&2
# Each measurement runs ours, then the peer right after: on a shared machine the two sides of a row then see
# the same background load, which drifts over minutes.
for run in "${runs[@]}"; do
    read -r step batch r dilation <<<"$run"
    dilation="${dilation:-1}"
    echo "ours  $step batch $batch ..." >&2
    "$brainseg" bench --device cpu --step "$step" --batch "$batch" --reps "$r" --warmup 2 --volume "$volume" \
        --dilation "$dilation" --json | tee -a "$log"
    [[ -n "$torch_python" ]] || continue
    echo "torch $step batch $batch ..." >&2
    "$torch_python" "$root/benchmarks/peers/torch_peer.py" --device cpu --threads "$(nproc)" --steps "$step" \
        --batch "$batch" --reps "$r" --warmup 2 --volume "$volume" --dilation "$dilation" | tee -a "$log"
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/header.txt"
{ cat "$out/header.txt"; python3 "$root/native/device/bench_table.py" "$log"; } | tee "$out/table.txt"
