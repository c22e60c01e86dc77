#!/usr/bin/env bash
# Builds, tests and publishes BrainSegCuda.
#   ./build.sh            restore + Release build; the CLI lands in artifacts/bin/brainseg
#   ./build.sh test       build, then every test that needs no GPU (Gpu tests report Ignored)
#   ./build.sh publish    NativeAOT brainseg for linux-x64 in artifacts/aot/ (no .NET runtime needed)
#   ./build.sh bundle     the GPU-machine bundle in artifacts/device/ (see native/device/)
# Extra arguments after 'test' go to the test runner, e.g. ./build.sh test --filter "FullyQualifiedName~Conv".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
configuration="${CONFIGURATION:-Release}"
artifacts="$root/artifacts"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '\n== %s\n' "$*"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

command -v dotnet >/dev/null || die "the .NET 10 SDK ('dotnet') is not on PATH; install it from https://dot.net"

build() {
    say "build ($configuration)"
    dotnet build BrainSegCuda.sln -c "$configuration" -nologo
    say "CLI -> artifacts/bin/brainseg"
    dotnet publish src/BrainSeg.Cli/BrainSeg.Cli.csproj -c "$configuration" --no-build -nologo -o "$artifacts/bin"
    [[ -x "$artifacts/bin/brainseg" ]] || die "artifacts/bin/brainseg was not produced"
}

# Counts the <UnitTestResult> elements of a TRX file whose outcome matches a pattern.
count_outcomes() {
    { grep -oE "<UnitTestResult [^>]*outcome=\"($2)\"" "$1" || true; } | wc -l
}

# Sums the counters of every TRX file in a folder: prints "passed failed skipped".
trx_totals() {
    local passed=0 failed=0 skipped=0 f p x s
    for f in "$1"/*.trx; do
        [[ -e "$f" ]] || continue
        p=$(count_outcomes "$f" 'Passed')
        x=$(count_outcomes "$f" 'Failed|Error|Timeout|Aborted')
        s=$(count_outcomes "$f" 'NotExecuted|Inconclusive|Skipped')
        passed=$((passed + p)); failed=$((failed + x)); skipped=$((skipped + s))
    done
    echo "$passed $failed $skipped"
}

run_tests() {
    build
    local results="$artifacts/test-results"
    rm -rf "$results"
    say "tests (no GPU needed; Gpu-category tests report Ignored)"
    local rc=0
    # The test assembly is a Microsoft.Testing.Platform executable; dotnet test drives it.
    dotnet test --project tests/BrainSeg.Tests/BrainSeg.Tests.csproj -c "$configuration" --no-build \
        --results-directory "$results" --report-trx --report-trx-filename BrainSeg.Tests.trx \
        --no-progress "$@" || rc=$?
    read -r passed failed skipped < <(trx_totals "$results")
    if (( passed + failed + skipped == 0 )); then
        die "no test results found in $results (test run exit code $rc)"
    fi
    say "totals"
    echo "$passed passed, $failed failed, $skipped skipped" | tee "$results/totals.txt"
    (( rc == 0 && failed == 0 )) || die "tests failed (exit code $rc, $failed failed)"
    smoke_cli
}

# The command-line contract every verb shares: help exits 0, a usage error exits 2.
smoke_cli() {
    local cli="$artifacts/bin/brainseg" rc
    "$cli" --help >/dev/null || die "'brainseg --help' failed"
    rc=0; "$cli" --no-such-option >/dev/null 2>&1 || rc=$?
    (( rc == 2 )) || die "'brainseg --no-such-option' exited $rc, expected 2"
    echo "CLI smoke check: --help exits 0, an unknown option exits 2"
}

publish_aot() {
    local out="$artifacts/aot"
    say "NativeAOT brainseg (linux-x64) -> artifacts/aot/"
    command -v clang >/dev/null || command -v gcc >/dev/null || die "NativeAOT needs clang or gcc (and zlib1g-dev): apt-get install clang zlib1g-dev"
    rm -rf "$out"
    dotnet publish src/BrainSeg.Cli/BrainSeg.Cli.csproj -c "$configuration" -r linux-x64 -nologo \
        -p:BrainSegAot=true -o "$out"
    [[ -x "$out/brainseg" ]] || die "artifacts/aot/brainseg was not produced"
    rm -f "$out"/*.dbg "$out"/*.pdb
    local bytes; bytes=$(stat -c %s "$out/brainseg")
    awk -v b="$bytes" 'BEGIN { printf "artifacts/aot/brainseg: %d bytes (%.1f MB)\n", b, b / 1048576 }'
}

case "${1:-build}" in
    build) build ;;
    test) shift; run_tests "$@" ;;
    publish) publish_aot ;;
    bundle) exec "$root/native/device/bundle.sh" ;;
    -h|--help|help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown target '$1' (use: build | test | publish | bundle)" ;;
esac
