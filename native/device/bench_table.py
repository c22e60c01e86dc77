#!/usr/bin/env python3
"""Joins `brainseg bench --json` lines and torch_peer.py lines (from any number of log files) into one table.

Usage: bench_table.py LOG...        the table
       bench_table.py --brief LOG   one line per measurement in LOG (for the device summary)   Each log may hold text; only lines that parse as JSON objects with a "step" count.
For each (step, batch) the fastest of our variants is set beside the fastest of PyTorch's;
ratio = torch ms / ours ms, so above 1 means ours is faster.
"""
import json
import sys


def rows(paths):
    for path in paths:
        try:
            lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and "step" in r and "median_ms" in r:
                yield r


def tflops(r):
    # CPU rates are hundredths of a TFLOP/s: keep three decimals there.
    return "-" if r is None else f"{r['tflops']:.2f}" if r["tflops"] >= 1 else f"{r['tflops']:.3f}"


def mib(b):
    return "-" if b is None else f"{b / 1048576:.0f}"


def counted(r):
    """Our backend's counts per step (launches, host waits, modelled GB), when the line has them."""
    if "launches_per_step" not in r:
        return ""
    return (f", {r['launches_per_step']:g} launches, {r['host_syncs_per_step']:g} syncs, "
            f"{r['device_allocs_per_step']:g} allocs, {r['modelled_bytes_per_step'] / 1e9:.2f} GB modelled")


def brief(paths):
    parts = [f"{r['step']} {r['batch']} {r.get('variant', '')}: {r['median_ms']:.2f} ms, {r['tflops']:.2f} TF/s{counted(r)}" for r in rows(paths)]
    print("; ".join(parts) if parts else "no result")


def main(paths):
    ours, torch = {}, {}
    for r in rows(paths):
        # Conv rows are told apart by their dilation.
        name = r["step"] + (f" d{r['dilation']}" if r["step"] == "conv" and r.get("dilation") is not None else "")
        key = (name, int(r["batch"]))
        side = ours if r.get("peer") == "brainseg" else torch
        if key not in side or r["median_ms"] < side[key]["median_ms"]:
            side[key] = r
    if not ours and not torch:
        print("bench table: no measurements found (see the bench logs)")
        return
    order = {s: i for i, s in enumerate(["fcn", "dilated", "adversarial", "segment", "conv", "batchnorm"])}
    keys = sorted(set(ours) | set(torch), key=lambda k: (order.get(k[0].split()[0], 9), k[0], k[1]))
    card = next((r.get("card") or r.get("device") for r in ours.values()), None) or next((r["device"] for r in torch.values()), "?")
    peer = next((r.get("peer") for r in torch.values()), "torch (no result)")
    print(f"== bench: ours vs {peer} on {card}; ratio = torch ms / ours ms (>1: ours faster); best variant of each side")
    print(f"{'step':<12}{'batch':>6} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} {'ours TF/s':>10} {'torch TF/s':>10} {'peak MiB ours/torch':>20}  variants ours/torch (reps)")
    for k in keys:
        o, t = ours.get(k), torch.get(k)
        oms = f"{o['median_ms']:.2f}" if o else "-"
        tms = f"{t['median_ms']:.2f}" if t else "-"
        ratio = f"{t['median_ms'] / o['median_ms']:.2f}" if o and t else "-"
        otf, ttf = tflops(o), tflops(t)
        peak = f"{mib(o.get('peak_bytes')) if o else '-'}/{mib(t.get('peak_bytes')) if t else '-'}"
        var = f"{o['variant'] if o else '-'}/{t['variant'] if t else '-'}"
        reps = f" ({o.get('reps')} reps)" if o else ""
        print(f"{k[0]:<12}{k[1]:>6} {oms:>9} {tms:>9} {ratio:>6} {otf:>10} {ttf:>10} {peak:>20}  {var}{reps}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--brief"]:
        brief(sys.argv[2:])
    else:
        main(sys.argv[1:])
