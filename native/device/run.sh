#!/usr/bin/env bash
# Runs the device bundle on a GPU machine (from the repository root): bash artifacts/device/run.sh
# Unpacks to /tmp, finds the NVIDIA libraries, then runs a list of steps, each under its own time limit,
# with full logs under $OUT/logs (packed into $OUT/device-logs.tar.gz at the end). Prints one table LAST.
# Without a CUDA driver it says so and still runs the CPU part, so the bundle can be checked anywhere.
# To add a step: one line in the STEPS section below (step = always, gpu_step = only with a driver).
set -uo pipefail    # no -e: a failing step is recorded and the next one still runs

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-/tmp/brainseg-device-out}"
budget="${BRAINSEG_DEVICE_BUDGET_S:-330}"   # whole run, seconds; the tool's call must allow more
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
[[ -n "$driver" ]] || verb_step step gradcheck-cpu 120 gradcheck --device cpu
# ==== end of STEPS ====

# ---- report: failing logs' tails, then the table LAST ----
for log in "${failed_logs[@]}"; do
    echo
    echo "---- last lines of $(basename "$log")"
    tail -n 15 "$log" | cut -c1-200
done

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
