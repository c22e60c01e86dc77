#!/usr/bin/env bash
# Runs the device bundle on a GPU machine (from the repository root): bash artifacts/device/run.sh
# Unpacks to /tmp, finds the NVIDIA libraries, then runs a list of steps, each under its own time limit,
# with full logs under $OUT/logs (packed into $OUT/device-logs.tar.gz at the end). Prints one table LAST.
# Without a CUDA driver it says so and still runs the CPU part, so the bundle can be checked anywhere.
# To add a step: one line in the STEPS section below (step = always, gpu_step = only with a driver).
set -uo pipefail    # no -e: a failing step is recorded and the next one still runs

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-/tmp/brainseg-device-out}"
budget="${BRAINSEG_DEVICE_BUDGET_S:-380}"   # whole run, seconds; the tool's call must allow more
work=/tmp/brainseg-device
logs="$OUT/logs"
started=$SECONDS

mkdir -p "$logs"
rm -rf "$work" && mkdir -p "$work"
if ! tar -xJf "$here/bundle.tar.xz" -C "$work"; then
    echo "run.sh: cannot unpack $here/bundle.tar.xz (build it with native/device/bundle.sh and carry artifacts/device)" >&2
    exit 1
fi
brainseg="$work/brainseg"
tests="$work/tests/BrainSeg.Tests"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# ---- the NVIDIA libraries: Python wheels' nvidia/*/lib first, then a search of the disk ----
cuda_lib_dirs() {
    python3 - <<'PY' 2>/dev/null
import os
try:
    import nvidia  # a namespace package: no __file__, only __path__
except ImportError:
    raise SystemExit
for base in nvidia.__path__:
    for name in sorted(os.listdir(base)):
        lib = os.path.join(base, name, "lib")
        if os.path.isdir(lib):
            print(lib)
PY
    local have; have="$(python3 -c 'import nvidia,glob,os; print(" ".join(os.path.basename(f) for p in nvidia.__path__ for f in glob.glob(p + "/*/lib/lib*.so*")))' 2>/dev/null)"
    if [[ "$have" != *libcudnn.so.9* || "$have" != *libnvrtc.so.1* || "$have" != *libcublas.so.1* ]]; then
        timeout 30 find / \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path "$OUT" \) -prune -o \
            \( -name 'libcudnn.so.9' -o -name 'libnvrtc.so.1*' -o -name 'libcublas.so.1*' \) -printf '%h\n' 2>/dev/null
    fi
}

# ---- is there a usable GPU? Ask the driver itself (cuInit + cuDeviceGetCount), as the engine will ----
driver=""   # non-empty when CUDA works and has at least one device
driver_lib=""
probe=""
for d in $(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF}') /usr/lib/x86_64-linux-gnu/libcuda.so.1 \
         /usr/local/nvidia/lib64/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/local/cuda/compat/libcuda.so.1; do
    [[ -e "$d" ]] && driver_lib="$d" && break
done
if [[ -z "$driver_lib" ]]; then
    why="no CUDA driver: libcuda.so.1 is not in the loader cache nor in /usr/lib/x86_64-linux-gnu, /usr/local/nvidia/lib64, /usr/lib64, /usr/local/cuda/compat"
elif command -v python3 >/dev/null; then
    probe="$(timeout 60 python3 - "$driver_lib" <<'PY' 2>&1
import ctypes, sys
cuda = ctypes.CDLL(sys.argv[1])
count, text = ctypes.c_int(0), ctypes.c_char_p()
status = cuda.cuInit(0)
if status == 0:
    status = cuda.cuDeviceGetCount(ctypes.byref(count))
if status != 0:
    cuda.cuGetErrorString(status, ctypes.byref(text))
    print(f"error {status}: {(text.value or b'?').decode()}")
else:
    print(f"ok {count.value}")
PY
)"
    if [[ "$probe" == "ok "* && "${probe#ok }" -gt 0 ]]; then
        driver="$driver_lib"
    else
        why="no CUDA driver in working order: $driver_lib is installed but cuInit/cuDeviceGetCount said '${probe:-nothing}'"
    fi
elif nvidia-smi -L >/dev/null 2>&1; then
    driver="$driver_lib"
else
    why="no CUDA driver in working order: $driver_lib is installed but nvidia-smi lists no GPU"
fi

echo "== brainseg device run: $(cat "$work/BUNDLE-INFO" 2>/dev/null), $(date -u +%FT%TZ), $(hostname)"
if [[ -n "$driver" ]]; then
    echo "== CUDA driver: $driver (${probe#ok } device(s))"
else
    echo "== $why"
    echo "== GPU steps are skipped; the CPU part still runs"
fi
if [[ -n "$driver" ]]; then
    BRAINSEG_CUDA_LIBS="$(cuda_lib_dirs | awk 'NF && !seen[$0]++' | paste -sd: -)"
    export BRAINSEG_CUDA_LIBS
fi
echo "== BRAINSEG_CUDA_LIBS=${BRAINSEG_CUDA_LIBS:-(none found)}"

# ---- steps ----
rows=()        # "name|status|seconds|detail"
failed_logs=() # logs whose tail is shown before the table
count=0

# step NAME LIMIT_S COMMAND...: runs COMMAND with its output in $logs/NN-NAME.log under min(LIMIT_S, time left).
step() {
    local name="$1" limit="$2"; shift 2
    count=$((count + 1))
    local log; log="$logs/$(printf '%02d' "$count")-$name.log"
    local left=$((budget - (SECONDS - started)))
    if (( left < 10 )); then rows+=("$name|SKIP|0|no time left in the ${budget}s budget"); return; fi
    (( limit > left )) && limit=$left
    echo ">> $name (limit ${limit}s)"
    local t0=$SECONDS rc=0
    timeout -k 5 "$limit" "$@" >"$log" 2>&1 </dev/null || rc=$?
    local status=ok
    case $rc in
        0) ;;
        124|137) status=TIMEOUT ;;
        *) status="FAIL($rc)" ;;
    esac
    [[ $status == ok ]] || failed_logs+=("$log")
    local detail
    if declare -F "detail_${name//-/_}" >/dev/null; then
        detail="$("detail_${name//-/_}" "$log")"
    else
        detail="$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
    fi
    rows+=("$name|$status|$((SECONDS - t0))|$detail")
}

# gpu_step: a step that needs the CUDA driver; skipped (and said so) without one.
gpu_step() {
    if [[ -z "$driver" ]]; then rows+=("$1|SKIP|0|no CUDA driver"); return; fi
    step "$@"
}

# verb_step NAME LIMIT VERB ARGS...: a brainseg verb; reported MISSING when this build lacks the verb.
verb_step() {
    local runner="$1"; shift
    local name="$1" limit="$2" verb="$3"
    if ! "$brainseg" "$verb" --help >/dev/null 2>&1; then rows+=("$name|MISSING|0|'brainseg $verb' is not in this build"); return; fi
    shift 2
    "$runner" "$name" "$limit" "$brainseg" "$@"
}

trx_file="$logs/gpu-tests.trx"
detail_nvidia_smi() { head -n 1 "$1" | cut -c1-60; }
detail_info() { grep -v '^[[:space:]]*$' "$1" | head -n 1; }
detail_gpu_tests() {
    if [[ -s "$trx_file" ]]; then python3 "$work/trx_summary.py" counts "$trx_file" 2>/dev/null || echo "TRX unreadable"
    else grep -E 'total:|failed:|succeeded:|skipped:' "$1" | tr -s ' \n' ' ' || echo "no TRX written"; fi
}

# ==== STEPS (append new ones here; each line: runner, name, limit in seconds, command) ====
if command -v nvidia-smi >/dev/null; then gpu_step nvidia-smi 20 nvidia-smi -L; else rows+=("nvidia-smi|SKIP|0|nvidia-smi not installed"); fi
verb_step step info 60 info
step gpu-tests 240 "$tests" --filter "TestCategory=Gpu" --results-directory "$logs" \
    --report-trx --report-trx-filename "$(basename "$trx_file")" --no-ansi --progress off --output Detailed
verb_step gpu_step gradcheck-cuda 90 gradcheck --device cuda
# Which fused patterns (batch norm and ReLU around a convolution) this cuDNN can plan, float and half inputs.
detail_info_fusion() { echo "patterns with a plan: float $(grep -cE ' float +[1-9][0-9]* of' "$1") of $(grep -cE ' float +' "$1"), half $(grep -cE ' half +[1-9][0-9]* of' "$1") of $(grep -cE ' half +' "$1")"; }
verb_step gpu_step info-fusion 60 info --fusion
[[ -n "$driver" ]] || verb_step step gradcheck-cpu 120 gradcheck --device cpu
# Training end to end on the GPU: the adversarial scheme on the phantom, a quick run (the losses are in its log).
detail_train_cuda() { grep -E "patches/s|final|model" "$1" | tail -n 1 | cut -c1-100; }
verb_step gpu_step train-cuda 90 train --data phantom --net fcn --adversarial --quick --epochs 1 --device cuda --out /tmp/brainseg-train-cuda
# The training loop's own rate at batch 300 (replayed iterations, losses read late, staged uploads), to set beside
# bench-fcn-300-graphs: the loop should keep within 10% of the bench's patches/s.
detail_train_rate_fcn_300() { grep -oE '[0-9.]+ patches/s' "$1" | tail -n 1 | sed 's/^/train loop: /'; }
verb_step gpu_step train-rate-fcn-300 60 train --data phantom --net fcn --batch 300 --patches-per-class 3000 --epochs 1 --precision tf32 --device cuda --out /tmp/brainseg-train-rate
# The README's main job on the GPU (issue: under a minute with a GPU): train, segment, evaluate, compare, report.
# Startup (issue: performance, target <= 3 s): `brainseg segment` of a 256^3 volume, process start to label map written,
# after a first run has filled the kernel cache; uses the model the train-cuda step wrote.
detail_segment_startup() { tail -n 1 "$1"; }
gpu_step segment-startup 90 python3 "$work/segment_startup.py" "$brainseg" /tmp/brainseg-train-cuda/model.safetensors
detail_demo_cuda() { grep -E "^Report|mean Dice" "$1" | tr -s ' ' | head -n 3 | paste -sd';' | cut -c1-100; }
verb_step gpu_step demo-cuda 150 demo --device cuda --out /tmp/brainseg-demo-cuda
# Cohort throughput: 'segment --output-dir' over 6 synthetic 256^3 .nii.gz images, read and write overlapping the GPU (volumes/min).
detail_cohort_cuda() { tail -n 1 "$1" | cut -c1-100; }
verb_step gpu_step cohort-cuda 120 bench --step cohort --device cuda --volumes 6 --volume 256
if [[ "${BRAINSEG_DEVICE_BENCH:-1}" != 0 ]]; then
# ---- bench: ours (brainseg bench), then the PyTorch peer, then one table; the whole part within $bench_budget s ----
# Ours runs with TF32 allowed (the peer reports its best of fp32/TF32 and NCHW/NHWC), plus FCN 300 in fp32.
# Each of our runs stops timing after --time-limit seconds (at least 3 reps; its JSON says how many ran).
bench_budget="${BRAINSEG_BENCH_BUDGET_S:-180}"
torch_reserve=70     # seconds of the bench budget kept for the PyTorch peer and the table
bench_started=$SECONDS
table_script="$work/bench_table.py"; [[ -f "$table_script" ]] || table_script="native/device/bench_table.py"
bench_left() { echo $(( bench_budget - (SECONDS - bench_started) )); }
bench_detail() { python3 "$table_script" --brief "$1" 2>/dev/null || tail -n 1 "$1"; }
# ours NAME LIMIT ARGS...: brainseg bench --device cuda --json ARGS, within the part of the budget not kept for the peer.
ours() {
    local name="$1" limit="$2"; shift 2
    local left=$(( $(bench_left) - torch_reserve ))
    if (( left < 8 )); then rows+=("$name|SKIP|0|our share of the ${bench_budget}s bench budget is spent"); return; fi
    (( limit > left )) && limit=$left
    eval "detail_${name//-/_}() { bench_detail \"\$1\"; }"
    verb_step gpu_step "$name" "$limit" bench --device cuda --json "$@"
}
if [[ -n "$driver" ]] && command -v nvidia-smi >/dev/null; then
    step gpu-clocks 15 nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.draw,power.limit,temperature.gpu,utilization.gpu --format=csv
fi
# In order of what the targets need, so that a spent budget skips the least of it: the training steps eager and
# replayed as CUDA graphs (one launch per step), the trainer's adversarial iteration both ways, batch 100, segment.
ours bench-fcn-300 14 --step fcn --batch 300 --precision tf32 --time-limit 4
ours bench-dilated-300 14 --step dilated --batch 300 --precision tf32 --time-limit 4
ours bench-fcn-300-graphs 12 --step fcn --batch 300 --precision tf32 --graphs on --time-limit 3
ours bench-dilated-300-graphs 12 --step dilated --batch 300 --precision tf32 --graphs on --time-limit 3
ours bench-adv-100 14 --step adversarial --batch 100 --precision tf32 --time-limit 4
ours bench-adv-100-graphs 12 --step adversarial --batch 100 --precision tf32 --graphs on --time-limit 3
ours bench-fcn-100 12 --step fcn --batch 100 --precision tf32 --graphs on --time-limit 3
ours bench-dilated-100 12 --step dilated --batch 100 --precision tf32 --graphs on --time-limit 3
ours bench-segment 20 --step segment --batch 16 --precision tf32 --time-limit 8
# The levers one at a time: NCHW instead of channels-last, the legacy algorithm search instead of timed graph-API
# engines, deterministic engines only (each against bench-fcn-300 above), batch 100 without graphs, and FCN 300 and
# segment with every batch norm's output and every bias and ReLU in separate passes instead of fused where cuDNN plans it.
ours bench-fcn-300-nchw 14 --step fcn --batch 300 --precision tf32 --layout nchw --time-limit 4
ours bench-fcn-300-legacy 14 --step fcn --batch 300 --precision tf32 --legacy-conv --time-limit 4
ours bench-fcn-300-det 14 --step fcn --batch 300 --precision tf32 --deterministic --time-limit 4
ours bench-fcn-100-eager 12 --step fcn --batch 100 --precision tf32 --time-limit 3
ours bench-fcn-300-unfused 14 --step fcn --batch 300 --precision tf32 --fusion off --time-limit 4
ours bench-segment-unfused 20 --step segment --batch 16 --precision tf32 --fusion off --time-limit 8
# Single layers, to place the gap: the 32→32 3×3 conv at both ends of the dilations, and batch norm + ReLU.
ours bench-conv-d1-300 8 --step conv --batch 300 --precision tf32 --dilation 1 --time-limit 2
ours bench-conv-d16-300 8 --step conv --batch 300 --precision tf32 --dilation 16 --time-limit 2
ours bench-batchnorm-300 8 --step batchnorm --batch 300 --time-limit 2
ours bench-fcn-300-fp32 12 --step fcn --batch 300 --precision fp32 --time-limit 3
# The peer: the GPU machine's PyTorch (its own venv first); two runs so that a slow one cannot starve segment.
torch_python=""
peer="$work/torch_peer.py"; [[ -f "$peer" ]] || peer="benchmarks/peers/torch_peer.py"
if [[ -n "$driver" ]]; then
    for p in /opt/torch/.venv/bin/python3 python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null && timeout 60 "$p" -c 'import torch' >/dev/null 2>&1; then torch_python="$p"; break; fi
    done
fi
detail_torch_train() { bench_detail "$1"; }
detail_torch_segment() { bench_detail "$1"; }
detail_torch_layers() { bench_detail "$1"; }
if [[ -z "$driver" ]]; then for t in torch-train torch-segment torch-layers torch-compile; do rows+=("$t|SKIP|0|no CUDA driver"); done
elif [[ -z "$torch_python" ]]; then rows+=("torch-train|MISSING|0|no python3 with torch (/opt/torch/.venv/bin/python3, python3, /usr/bin/python3)")
else
    left=$(( $(bench_left) - 25 )); (( left > 45 )) || left=45
    step torch-train "$left" "$torch_python" "$peer" --device cuda --steps fcn,dilated,adversarial --batch 100,300 --reps 30 --warmup 5 --variants tf32/nhwc,fp32/nchw
    left=$(( $(bench_left) - 4 )); (( left > 10 )) || left=10
    step torch-segment "$left" "$torch_python" "$peer" --device cuda --steps segment --batch 16 --reps 30 --volume 256 --variants tf32/nhwc,fp32/nchw
    left=$(( $(bench_left) - 4 ))
    if (( left >= 15 )); then
        step torch-layers "$left" "$torch_python" "$peer" --device cuda --steps conv,batchnorm --batch 300 --dilation 1,16 --reps 30 --warmup 5 --variants tf32/nhwc,fp32/nchw
    else rows+=("torch-layers|SKIP|0|the ${bench_budget}s bench budget is spent"); fi
    # torch.compile(max-autotune) of the training steps, last: its compilation can take minutes, so it gets what is left.
    detail_torch_compile() { bench_detail "$1"; }
    left=$(( $(bench_left) - 4 ))
    if (( left >= 30 )); then
        step torch-compile "$left" "$torch_python" "$peer" --device cuda --steps fcn --batch 300 --reps 20 --warmup 3 --variants tf32/nhwc --compile
    else rows+=("torch-compile|SKIP|0|the ${bench_budget}s bench budget is spent"); fi
fi
detail_bench_table() { echo "ours vs torch: see bench-table.txt"; }
if compgen -G "$logs/*-bench-*.log" >/dev/null || compgen -G "$logs/*-torch-*.log" >/dev/null; then
    step bench-table 10 python3 "$table_script" $(ls "$logs"/*-bench-*.log "$logs"/*-torch-*.log 2>/dev/null)
fi
# Where the time of a batch-300 step goes: every op timed with device events (the logs keep the whole table).
detail_profile() { grep -A3 '^profile:' "$1" | sed -n '1p;3,4p' | tr -s ' ' | paste -sd';' | cut -c1-100; }
detail_profile_fcn_300() { detail_profile "$1"; }
detail_profile_dilated_300() { detail_profile "$1"; }
verb_step gpu_step profile-fcn-300 40 bench --device cuda --step fcn --batch 300 --precision tf32 --reps 10 --warmup 3 --profile
verb_step gpu_step profile-dilated-300 40 bench --device cuda --step dilated --batch 300 --precision tf32 --reps 10 --warmup 3 --profile
else rows+=("bench|SKIP|0|BRAINSEG_DEVICE_BENCH=0: no timing in this run"); fi
# ==== end of STEPS ====

# ---- report: failing logs' tails, then the table LAST ----
for log in "${failed_logs[@]}"; do
    echo
    echo "---- last lines of $(basename "$log")"
    tail -n 15 "$log" | cut -c1-200
done

# The bench table (ours vs PyTorch) just before the summary, and kept as a file.
bench_table_log="$(ls "$logs"/*-bench-table.log 2>/dev/null | tail -n 1)"
if [[ -n "$bench_table_log" ]]; then echo; cp -f "$bench_table_log" "$OUT/bench-table.txt"; cat "$bench_table_log"; fi

table="$OUT/summary.txt"
{
    echo
    echo "== device summary ($(cat "$work/BUNDLE-INFO" 2>/dev/null); $((SECONDS - started))s total)"
    printf '%-16s %-9s %5s  %s\n' step status secs detail
    for row in "${rows[@]}"; do
        IFS='|' read -r name status secs detail <<<"$row"
        printf '%-16s %-9s %5s  %s\n' "$name" "$status" "$secs" "${detail:0:100}"
    done
    if [[ -s "$trx_file" ]]; then python3 "$work/trx_summary.py" details "$trx_file" 2>/dev/null; fi
} | tee "$table"

# At most 8 files come back from $OUT: keep the summary and the TRX, pack the logs into one file.
cp -f "$trx_file" "$OUT/" 2>/dev/null
tar -czf "$OUT/device-logs.tar.gz" -C "$OUT" logs && rm -rf "$logs"

# Exit 0 only when no step failed (SKIP and MISSING do not count as failures here; the table shows them).
for row in "${rows[@]}"; do
    IFS='|' read -r _ status _ _ <<<"$row"
    [[ $status == ok || $status == SKIP || $status == MISSING ]] || exit 1
done
exit 0
