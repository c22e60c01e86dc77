#!/usr/bin/env python3
"""Startup of `brainseg segment`: process start to label map written, with a warm kernel cache.

Usage: segment_startup.py BRAINSEG MODEL [--side 256] [--device cuda]
Writes a side³ float32 NIfTI-1 test volume (a bright ball in a darker box, so the network sees image-like
contrast), runs `brainseg segment` once to fill the kernel cache, then times two more runs from process
start to exit (the label map is written before exit). Prints one line per run and a last line
"warm start to label map: S s" with the faster warm run.
"""
import argparse
import os
import struct
import subprocess
import sys
import time


def write_volume(path, side):
    header = bytearray(352)                                   # NIfTI-1 header + 4-byte extension flag
    struct.pack_into("<i", header, 0, 348)                    # sizeof_hdr
    struct.pack_into("<8h", header, 40, 3, side, side, side, 1, 1, 1, 1)   # dim
    struct.pack_into("<hh", header, 70, 16, 32)               # datatype float32, bitpix
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 0, 0, 0, 0)            # pixdim (qfac 1, 1 mm)
    struct.pack_into("<f", header, 108, 352)                  # vox_offset
    struct.pack_into("<f", header, 112, 1)                    # scl_slope
    struct.pack_into("<hh", header, 252, 0, 1)                # qform_code 0, sform_code 1 (scanner)
    half = side / 2
    struct.pack_into("<12f", header, 280, 1, 0, 0, -half, 0, 1, 0, -half, 0, 0, 1, -half)   # srow_x/y/z
    header[344:348] = b"n+1\0"
    radius2 = (side * 0.35) ** 2
    dark, bright = struct.pack("<f", 20.0), struct.pack("<f", 80.0)
    with open(path, "wb") as f:
        f.write(header)
        for z in range(side):
            rows = []
            for y in range(side):
                # Row (y, z) crosses the ball over x in [x0, x1).
                reach = radius2 - (z - half) ** 2 - (y - half) ** 2
                x0 = x1 = 0
                if reach > 0:
                    x0 = max(0, min(side, int(half - reach ** 0.5) + 1))
                    x1 = max(x0, min(side, int(half + reach ** 0.5) + 1))
                rows.append(dark * x0 + bright * (x1 - x0) + dark * (side - x1))
            f.write(b"".join(rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("brainseg")
    ap.add_argument("model")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--work", default="/tmp/brainseg-startup")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    volume = os.path.join(args.work, f"volume{args.side}.nii")
    write_volume(volume, args.side)
    times = []
    for run in range(3):
        labels = os.path.join(args.work, f"labels{run}.nii.gz")
        started = time.perf_counter()
        done = subprocess.run([args.brainseg, "segment", "--model", args.model, "-i", volume, "-o", labels,
                               "--device", args.device, "--batch-slices", "16"], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0 or not os.path.exists(labels):
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
            sys.exit(f"segment run {run} failed with exit code {done.returncode}")
        print(f"run {run} ({'cold cache' if run == 0 else 'warm cache'}): {seconds:.2f} s, {args.side}^3 on {args.device}")
        if run > 0:
            times.append(seconds)
    print(f"warm start to label map: {min(times):.2f} s")


if __name__ == "__main__":
    main()
