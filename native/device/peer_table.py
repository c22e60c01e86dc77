"""Prints the PyTorch peer's JSON lines (torch_peer.py) as a compact table, one row per measurement."""
import json
import sys

for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    peak = (r.get("peak_bytes") or 0) / 2**20
    print(f"{r['step']:<12} batch {r['batch']:>4}  {r['variant']:<10} {r['median_ms']:9.2f} ms"
          f"  {r['tflops']:6.1f} TFLOP/s  {r['patches_per_s']:10.0f}/s  peak {peak:7.0f} MiB")
