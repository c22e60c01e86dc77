# Builds, tests and publishes BrainSegCuda on Windows (mirrors build.sh).
#   ./build.ps1            restore + Release build; the CLI lands in artifacts\bin\brainseg.exe
#   ./build.ps1 test       build, then every test that needs no GPU (Gpu tests report Ignored)
#   ./build.ps1 publish    NativeAOT brainseg.exe for win-x64 in artifacts\aot\ (no .NET runtime needed)
# Extra arguments after 'test' go to the test runner, e.g. ./build.ps1 test --filter "FullyQualifiedName~Conv".
param(
    [Parameter(Position = 0)][ValidateSet('build', 'test', 'publish')][string]$Target = 'build',
    [Parameter(ValueFromRemainingArguments = $true)][string[]]$TestArgs = @()
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = $PSScriptRoot
Set-Location $root
$configuration = if ($env:CONFIGURATION) { $env:CONFIGURATION } else { 'Release' }
$artifacts = Join-Path $root 'artifacts'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'; $env:DOTNET_NOLOGO = '1'; $env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = '1'

function Say([string]$text) { Write-Host "`n== $text" }
function Die([string]$text) { Write-Error "build.ps1: error: $text"; exit 1 }
function Invoke-Dotnet { & dotnet @args; if ($LASTEXITCODE -ne 0) { Die "dotnet $($args[0]) failed (exit code $LASTEXITCODE)" } }

if (-not (Get-Command dotnet -ErrorAction SilentlyContinue)) { Die "the .NET 10 SDK ('dotnet') is not on PATH; install it from https://dot.net" }

function Build {
    Say "build ($configuration)"
    Invoke-Dotnet build BrainSegCuda.sln -c $configuration -nologo
    Say 'CLI -> artifacts\bin\brainseg'
    Invoke-Dotnet publish src/BrainSeg.Cli/BrainSeg.Cli.csproj -c $configuration --no-build -nologo -o (Join-Path $artifacts 'bin')
}

# Counts the test results of every TRX file in a folder by outcome.
function Get-TrxTotals([string]$folder) {
    $totals = @{ Passed = 0; Failed = 0; Skipped = 0 }
    foreach ($file in Get-ChildItem -Path $folder -Filter *.trx -ErrorAction SilentlyContinue) {
        [xml]$trx = Get-Content -Raw $file.FullName
        foreach ($result in $trx.TestRun.Results.UnitTestResult) {
            switch -Regex ($result.outcome) {
                '^Passed$' { $totals.Passed++ }
                '^(Failed|Error|Timeout|Aborted)$' { $totals.Failed++ }
                default { $totals.Skipped++ }
            }
        }
    }
    $totals
}

function Test {
    Build
    $results = Join-Path $artifacts 'test-results'
    if (Test-Path $results) { Remove-Item -Recurse -Force $results }
    Say 'tests (no GPU needed; Gpu-category tests report Ignored)'
    & dotnet test --project tests/BrainSeg.Tests/BrainSeg.Tests.csproj -c $configuration --no-build `
        --results-directory $results --report-trx --report-trx-filename BrainSeg.Tests.trx --no-progress @TestArgs
    $rc = $LASTEXITCODE
    $t = Get-TrxTotals $results
    if ($t.Passed + $t.Failed + $t.Skipped -eq 0) { Die "no test results found in $results (test run exit code $rc)" }
    Say 'totals'
    $line = "$($t.Passed) passed, $($t.Failed) failed, $($t.Skipped) skipped"
    Set-Content -Path (Join-Path $results 'totals.txt') -Value $line
    Write-Host $line
    if ($rc -ne 0 -or $t.Failed -ne 0) { Die "tests failed (exit code $rc, $($t.Failed) failed)" }
}

function Publish {
    $out = Join-Path $artifacts 'aot'
    Say 'NativeAOT brainseg (win-x64) -> artifacts\aot\ (needs the Visual Studio C++ build tools)'
    if (Test-Path $out) { Remove-Item -Recurse -Force $out }
    Invoke-Dotnet publish src/BrainSeg.Cli/BrainSeg.Cli.csproj -c $configuration -r win-x64 -nologo -p:BrainSegAot=true -o $out
    Get-ChildItem $out -Include *.pdb -Recurse | Remove-Item -Force
    $exe = Join-Path $out 'brainseg.exe'
    if (-not (Test-Path $exe)) { Die 'artifacts\aot\brainseg.exe was not produced' }
    $bytes = (Get-Item $exe).Length
    Write-Host ("artifacts\aot\brainseg.exe: {0} bytes ({1:N1} MB)" -f $bytes, ($bytes / 1MB))
}

switch ($Target) {
    'build' { Build }
    'test' { Test }
    'publish' { Publish }
}
