#!/usr/bin/env bash
# Segments a cohort on a Slurm cluster: one array task per GPU, each taking its own shard of the images.
#
#   sbatch --export=ALL,MODEL=/runs/fcn/model.safetensors,INPUT=/data/study,OUTPUT_DIR=/data/study-seg native/deploy/slurm-segment.sh
#
# INPUT is a folder (searched recursively), a glob or a manifest .csv; every task lists the same images,
# sorts them by relative path and takes positions i, i+n, i+2n, ... so the n tasks cover them exactly once.
# A task whose images all succeed exits 0; one where some failed exits 1 (its log lists them) and the
# label maps of the others are kept. Resubmitting the same script reruns only what is missing: finished
# label maps are skipped. Each task writes OUTPUT_DIR/summary-shard-i-of-n.csv.
#
# The array must be 0-based and contiguous (0-N), as --shard takes i/n with 0 <= i < n.
#SBATCH --job-name=brainseg-segment
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=02:00:00
#SBATCH --output=brainseg-segment-%A_%a.log
set -euo pipefail

: "${MODEL:?set MODEL to RUN_DIR/model.safetensors}"
: "${INPUT:?set INPUT to a folder, a glob or a manifest .csv of T1 images}"
: "${OUTPUT_DIR:?set OUTPUT_DIR to the folder for the label maps}"
# The NativeAOT binary (./build.sh publish -> artifacts/aot/brainseg): no .NET runtime needed on the node.
BRAINSEG="${BRAINSEG:-brainseg}"
# Where the node keeps cuDNN, cuBLAS and NVRTC when the loader's search and the CUDA folders do not have
# them (e.g. after 'module load cudnn'): colon-separated folders. 'brainseg info' shows what it finds.
export BRAINSEG_CUDA_LIBS="${BRAINSEG_CUDA_LIBS:-}"

exec "$BRAINSEG" segment --model "$MODEL" --input "$INPUT" --output-dir "$OUTPUT_DIR" --device cuda \
    --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"
