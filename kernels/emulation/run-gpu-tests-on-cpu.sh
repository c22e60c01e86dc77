#!/usr/bin/env bash
# Runs the Gpu test category WITHOUT a GPU: builds fake-cuda.cpp (a CPU stand-in for libcuda, NVRTC, cuBLAS
# and cuDNN whose kernel launches execute the real kernels/*.cu as host C++) under the real sonames, points
# BRAINSEG_CUDA_LIBS at it and runs the tests. It proves the backend's plumbing (argument lists, launch
# shapes, validation, pool, cuBLAS operand order, cuDNN descriptor use, CUDA graph capture and replay) and the
# kernels' logic; it does not prove NVRTC compilation (see ../nvrtc-check.py) or real cuDNN/cuBLAS numerics, nor
# which calls a real driver lets a capture hold (that takes a device run).
# Usage (repository root): kernels/emulation/run-gpu-tests-on-cpu.sh [test-runner options]   Needs clang++ (or g++ ≥ 11)
#        and python3. Options go to the test runner after the Gpu filter (--filter narrows it, --report-trx …);
#        CONFIGURATION (default Release) picks the build, NO_BUILD=1 uses the build already there.
#        kernels/emulation/run-gpu-tests-on-cpu.sh --libs DIR   only builds the stand-in into DIR/libs, for
#        running brainseg itself on it (BRAINSEG_CUDA_LIBS=DIR/libs), e.g. to read the device pool's peak.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ "${1:-}" == --libs ]]; then
    work="$(mkdir -p "$2" && cd "$2" && pwd)"
else
    work="$(mktemp -d /tmp/brainseg-fake-cuda.XXXXXX)"
    trap 'rm -rf "$work"' EXIT
fi
cxx="${CXX:-$(command -v clang++ || command -v clang++-14 || command -v g++)}"

# The launch registry: every exported kernel, and whether it synchronises (then it runs on real threads).
python3 - "$root/kernels" > "$work/registry.inc" <<'PY'
import glob, re, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.cu")):
    text = open(path).read()
    for m in re.finditer(r"EXPORT_FLOAT_KERNELS\((\w+)", text):
        name = m.group(1)
        body = text[text.rfind("template", 0, m.start()):m.start()]
        # Block reductions synchronise: their own shared memory, or common.cuh's helpers that use it.
        sync = "true" if re.search(r"__shared__|channels_last_partials|last_block", body) else "false"
        for suffix in ("f32", "f64"):
            print(f'    {{"{name}_{suffix}", make(&{name}_{suffix}_ns::{name}_{suffix}), {sync}}},')
PY

cc="${CC:-$(command -v clang || command -v clang-14 || command -v gcc)}"
mkdir -p "$work/libs"
"$cc" -shared -fPIC "$root/kernels/emulation/fake-clock.c" -o "$work/libs/libfakeclock.so"
"$cxx" -std=c++20 -O2 -fPIC -shared -pthread -I "$root/kernels" -I "$root/kernels/emulation" \
    -DREGISTRY="\"$work/registry.inc\"" "$root/kernels/emulation/fake-cuda.cpp" -o "$work/libfake.so" \
    -L "$work/libs" -lfakeclock -Wl,-rpath,'$ORIGIN'
echo "" > "$work/empty.c"
"$cc" -shared -fPIC "$work/empty.c" -o "$work/empty.so"
for soname in libcuda.so.1 libnvrtc.so.12 libcublas.so.12 libcudnn.so.9; do cp "$work/libfake.so" "$work/libs/$soname"; done
for companion in libnvrtc-builtins.so.12.8 libcublasLt.so.12 libcudnn_graph.so.9 libcudnn_engines_precompiled.so.9 \
    libcudnn_engines_runtime_compiled.so.9 libcudnn_heuristic.so.9 libcudnn_ops.so.9 libcudnn_cnn.so.9 libcudnn_adv.so.9; do
    cp "$work/empty.so" "$work/libs/$companion"
done

if [[ "${1:-}" == --libs ]]; then echo "stand-in built: BRAINSEG_CUDA_LIBS=$work/libs"; exit 0; fi
cd "$root"
filter="FullyQualifiedName~BrainSeg.Tests.Gpu"
args=()
while (( $# )); do
    # A --filter of the caller's narrows the Gpu suite (both must match).
    if [[ "$1" == --filter ]]; then filter="($filter)&($2)"; shift 2; else args+=("$1"); shift; fi
done
BRAINSEG_CUDA_LIBS="$work/libs" BRAINSEG_KERNEL_CACHE="$work/cache" \
    dotnet test --project tests/BrainSeg.Tests -c "${CONFIGURATION:-Release}" ${NO_BUILD:+--no-build} --no-progress -- --filter "$filter" "${args[@]}"
