#!/usr/bin/env bash
# Builds the device bundle here, for a GPU machine that has no .NET: artifacts/device/{bundle.tar.xz,run.sh}.
# The bundle holds the self-contained test runner (a folder: single-file publishing breaks NUnit's engine),
# the NativeAOT brainseg, and the TRX summariser; run.sh stays outside so it can unpack the rest.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="$root/artifacts/device"
stage="$root/artifacts/device-stage"
limit_mb=40
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

rm -rf "$out" "$stage"
mkdir -p "$out" "$stage"

echo "== self-contained test runner (linux-x64)"
dotnet publish tests/BrainSeg.Tests/BrainSeg.Tests.csproj -c Release -r linux-x64 --self-contained \
    -p:InvariantGlobalization=true -p:PublishSingleFile=false -nologo -o "$stage/tests"
[[ -x "$stage/tests/BrainSeg.Tests" ]] || { echo "bundle.sh: the test runner was not produced" >&2; exit 1; }

./build.sh publish
cp artifacts/aot/brainseg artifacts/aot/*.so native/device/trx_summary.py native/device/bench_table.py native/device/segment_startup.py benchmarks/peers/torch_peer.py "$stage/"

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
echo "commit $commit, built $(date -u +%FT%TZ)" >"$stage/BUNDLE-INFO"

echo "== compressing"
tar -C "$stage" -cf - . | xz -T0 -6 >"$out/bundle.tar.xz"
cp native/device/run.sh "$out/run.sh"
rm -rf "$stage"

bytes=$(stat -c %s "$out/bundle.tar.xz")
awk -v b="$bytes" 'BEGIN { printf "artifacts/device/bundle.tar.xz: %.1f MB\n", b / 1048576 }'
if (( bytes > limit_mb * 1048576 )); then
    echo "bundle.sh: the bundle is over ${limit_mb} MB; trim what it carries" >&2
    exit 1
fi
echo "run it on the GPU machine from the repository root: bash artifacts/device/run.sh"
