#!/usr/bin/env python3
"""The PyTorch peer: the same three networks and the same steps as `brainseg bench`, timed the same way.

Steps: fcn, dilated (training steps), adversarial (Ls + Ld + La), segment (whole volume), and two single
layers: conv (32->32 3x3 on 51x51, --dilation, forward + backward) and batchnorm (affine batch norm + ReLU
on 32x49x49, training forward + backward).

GPU: CUDA events around each repetition, warm-up first, median of >= 50 repetitions, inputs rotated
over several batches so caches do not flatter; cudnn.benchmark on; the best of fp32/TF32 and
NCHW/channels-last is reported, with every variant's time kept in the JSON. With --compile, the training
steps are also timed through torch.compile(mode="max-autotune") at TF32/channels-last (variant "+compiled";
its compilation is part of the warm-up, not of the time); where it cannot run, the JSON says why. Whole-volume inference is
also timed with batch norm folded into the convolutions (torch.nn.utils.fusion.fuse_conv_bn_eval), as
`brainseg segment` runs it; those variants carry "+folded".
CPU: wall clock, torch.set_num_threads(--threads).

Prints one JSON object per measurement (one line each), fields as `brainseg bench --json`:
step, batch, device, variant, median_ms, patches_per_s, tflops, peak_bytes (and dilation for conv).
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

FCN_FLOPS = 325e6      # forward FLOPs of one 51x51 FCN patch (C=7)
DILATED_FLOPS = 413e6  # one 87x87 dilated-network patch
DISC_FLOPS = 26e6      # one discriminator pass (C=7)
NORM_FLOPS_PER_ELEMENT = 20  # batch norm + ReLU forward and backward, nominal (as BenchRunner.NormFlopsPerElement)


def hidden(cin, cout, k=3, dilation=1, dropout=0.0):
    layers = [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Conv2d(cin, cout, k, dilation=dilation, bias=False), nn.BatchNorm2d(cout, eps=1e-4), nn.ReLU()]
    return layers


def fcn(classes):
    layers = hidden(1, 32)
    for _ in range(14):
        layers += hidden(32, 32)
    layers += hidden(32, 256, k=1, dropout=0.5)
    layers += [nn.Dropout(0.5), nn.Conv2d(256, classes, 1)]
    return nn.Sequential(*layers)


def dilated(classes):
    layers = hidden(1, 32)
    for d in (1, 2, 4, 8, 16, 1):
        layers += hidden(32, 32, dilation=d)
    layers += [nn.Dropout(0.5), nn.Conv2d(32, classes, 1)]
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.image = nn.Sequential(*hidden(1, 32), *hidden(32, 32))
        self.joint = nn.Sequential(*hidden(32 + classes, 32), *hidden(32, 32), *hidden(32, 32),
                                   nn.MaxPool2d(3, 3), *hidden(32, 32), *hidden(32, 32))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(32, 256, bias=False), nn.BatchNorm1d(256, eps=1e-4),
                                nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 2))

    def forward(self, image25, seg21):
        return self.fc(self.joint(torch.cat([self.image(image25), seg21], 1)))


def rmsprop(params, lr):
    # Lasagne's default rho 0.9; torch's eps sits outside the square root, a negligible difference in cost.
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-6)


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, reps, warmup):
        for i in range(warmup):
            fn(i)
        times = []
        for i in range(reps):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn(i)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn(i)
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)


def batches(device, count, shape, classes=None, channels_last=False):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = [torch.randn(*shape, device=device).contiguous(memory_format=fmt) for _ in range(count)]
    if classes is None:
        return xs
    ys = [torch.randint(0, classes, (shape[0], 21, 21), device=device) for _ in range(count)]
    return xs, ys


def train_step(net_fn, size, flops, args, device, batch, channels_last, compiled=False):
    net = net_fn(args.classes).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = rmsprop(net.parameters(), 1e-3)
    if compiled:
        net = torch.compile(net, mode="max-autotune")
    xs, ys = batches(device, 4, (batch, 1, size, size), args.classes, channels_last)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xs[i % 4]), ys[i % 4])
        loss.backward()
        opt.step()

    ms = Timer(device)(step, args.reps, args.warmup)
    return ms, 3 * flops * batch


def adversarial_step(args, device, batch, channels_last):
    """One Ls + Ld + La iteration with the FCN, each on its own minibatch of `batch`."""
    c = args.classes
    seg, disc = fcn(c).to(device), Discriminator(c).to(device)
    if channels_last:
        seg, disc = seg.to(memory_format=torch.channels_last), disc.to(memory_format=torch.channels_last)
    opt_s, opt_d = rmsprop(seg.parameters(), 1e-3), rmsprop(list(disc.parameters()) + list(seg.parameters()), 1e-5)
    xs, ys = batches(device, 4, (batch, 1, 51, 51), c, channels_last)
    manual = generated = None

    def step(i):
        x, y = xs[i % 4], ys[i % 4]
        crop = x[:, :, 13:38, 13:38]
        # Ls: segmentation loss, descent on the segmentation parameters.
        opt_s.zero_grad(set_to_none=True)
        F.cross_entropy(seg(x), y).backward()
        opt_s.step()
        # Ld: the discriminator learns to call manual segmentations manual (class 1).
        opt_d.zero_grad(set_to_none=True)
        onehot = F.one_hot(y, c).permute(0, 3, 1, 2).float()
        F.cross_entropy(disc(crop, onehot), torch.ones(batch, dtype=torch.long, device=device)).backward()
        opt_d.step()
        # La: the discriminator learns to call generated ones generated; the segmentation ascends.
        opt_d.zero_grad(set_to_none=True)
        loss = F.cross_entropy(disc(crop, F.softmax(seg(x), 1)), torch.zeros(batch, dtype=torch.long, device=device))
        loss.backward()
        for p in seg.parameters():
            if p.grad is not None:
                p.grad.neg_()
        opt_d.step()

    ms = Timer(device)(step, args.reps, args.warmup)
    return ms, 3 * batch * (3 * FCN_FLOPS + 2 * DISC_FLOPS)


def conv_layer(args, device, batch, channels_last, dilation):
    """One 32->32 3x3 convolution without bias on [N,32,51,51]: forward, then backward for input and weight."""
    conv = nn.Conv2d(32, 32, 3, dilation=dilation, bias=False).to(device)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
    xs = [x.requires_grad_() for x in batches(device, 4, (batch, 32, 51, 51), channels_last=channels_last)]
    side = 51 - 2 * dilation
    dy = batches(device, 1, (batch, 32, side, side), channels_last=channels_last)[0]

    def step(i):
        x = xs[i % 4]
        x.grad = conv.weight.grad = None
        conv(x).backward(dy)

    ms = Timer(device)(step, args.reps, args.warmup)
    return ms, 3 * 2.0 * batch * 32 * 32 * 9 * side * side


def norm_layer(args, device, batch, channels_last):
    """Batch norm (affine) then ReLU on [N,32,49,49] in training mode: forward, then backward."""
    bn = nn.BatchNorm2d(32, eps=1e-5, momentum=0.1).to(device)
    xs = [x.requires_grad_() for x in batches(device, 4, (batch, 32, 49, 49), channels_last=channels_last)]
    dy = batches(device, 1, (batch, 32, 49, 49), channels_last=channels_last)[0]

    def step(i):
        x = xs[i % 4]
        x.grad = bn.weight.grad = bn.bias.grad = None
        F.relu(bn(x)).backward(dy)

    ms = Timer(device)(step, args.reps, args.warmup)
    return ms, NORM_FLOPS_PER_ELEMENT * batch * 32 * 49 * 49


def folded(net):
    """An eval-mode sequence with each Conv2d + BatchNorm2d pair folded into one convolution, dropout left out."""
    modules, layers = list(net), []
    for i, m in enumerate(modules):
        if isinstance(m, nn.BatchNorm2d) and layers and isinstance(modules[i - 1], nn.Conv2d):
            layers[-1] = fuse_conv_bn_eval(layers[-1], m)
        elif not isinstance(m, nn.Dropout):
            layers.append(m)
    return nn.Sequential(*layers)


def segment_volume(args, device, batch, channels_last, fold):
    """Whole-volume inference: every axial slice of a 256^3 volume, padded by the FCN's radius 15."""
    net = fcn(args.classes).to(device).eval()
    if fold:
        net = folded(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    volume = torch.randn(args.volume, 1, args.volume, args.volume)

    def run(_):
        with torch.no_grad():
            for s in range(0, args.volume, batch):
                x = F.pad(volume[s:s + batch].to(device, non_blocking=True), (15, 15, 15, 15))
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                net(x).argmax(1).to("cpu", non_blocking=True)

    ms = Timer(device)(run, max(3, args.reps // 10), 1)
    pixels = args.volume ** 3
    return ms, FCN_FLOPS / 441 * pixels  # forward FLOPs per output pixel times pixels


def peak_bytes(device):
    """GPU: the peak allocated since the last reset; CPU: the process's peak resident set so far."""
    return torch.cuda.max_memory_allocated() if device.type == "cuda" \
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def compiled_variant(step, args, device, batch):
    """The training step through torch.compile(mode='max-autotune') at TF32/NHWC, or why it did not run."""
    variant = "tf32/nhwc+compiled"
    if device.type != "cuda":
        return {"variant": variant, "skipped": "max-autotune compiles GPU kernels; this run is on the CPU"}
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats()
        net_fn, size, flops = (fcn, 51, FCN_FLOPS) if step == "fcn" else (dilated, 87, DILATED_FLOPS)
        ms, work = train_step(net_fn, size, flops, args, device, batch, True, compiled=True)
        return {"variant": variant, "median_ms": ms, "peak_bytes": peak_bytes(device), "tflops": work / ms / 1e9}
    except Exception as e:  # no Triton, no compiler, an unsupported op: said, not hidden
        return {"variant": variant, "skipped": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", default="fcn,dilated,adversarial,segment")
    ap.add_argument("--batch", default="100,300")
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--volume", type=int, default=256)
    ap.add_argument("--dilation", default="1", help="dilations of the conv step, comma-separated")
    ap.add_argument("--variants", default="fp32/nchw,fp32/nhwc,tf32/nchw,tf32/nhwc",
                    help="GPU variants to time (math/layout); the best eager one is reported")
    ap.add_argument("--compile", action="store_true",
                    help="also time the training steps through torch.compile(mode='max-autotune') (GPU, TF32, NHWC)")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True
    variants = [(v.split("/")[0] == "tf32", v.split("/")[1] == "nhwc") for v in args.variants.split(",")] \
        if device.type == "cuda" else [(False, False)]
    sizes = [int(b) for b in args.batch.split(",")]
    for step in args.steps.split(","):
        for batch in sizes:
            if step == "adversarial" and batch != (100 if 100 in sizes else sizes[0]):
                continue  # one adversarial size: 100 each on the GPU, the first size asked for otherwise
            if step == "segment":
                batch = 16
            for dilation in ([int(d) for d in args.dilation.split(",")] if step == "conv" else [None]):
                results = []
                for tf32, cl, fold in [(t, c, f) for t, c in variants for f in ((False, True) if step == "segment" else (False,))]:
                    if device.type == "cuda":
                        torch.backends.cudnn.allow_tf32 = tf32
                        torch.backends.cuda.matmul.allow_tf32 = tf32
                        torch.cuda.reset_peak_memory_stats()
                    if step == "fcn":
                        ms, work = train_step(fcn, 51, FCN_FLOPS, args, device, batch, cl)
                    elif step == "dilated":
                        ms, work = train_step(dilated, 87, DILATED_FLOPS, args, device, batch, cl)
                    elif step == "adversarial":
                        ms, work = adversarial_step(args, device, batch, cl)
                    elif step == "conv":
                        ms, work = conv_layer(args, device, batch, cl, dilation)
                    elif step == "batchnorm":
                        ms, work = norm_layer(args, device, batch, cl)
                    else:
                        ms, work = segment_volume(args, device, batch, cl, fold)
                    results.append({"variant": f"{'tf32' if tf32 else 'fp32'}/{'nhwc' if cl else 'nchw'}{'+folded' if fold else ''}",
                                    "median_ms": ms, "peak_bytes": peak_bytes(device), "tflops": work / ms / 1e9})
                best = min(results, key=lambda r: r["median_ms"])  # the best eager variant
                if args.compile and step in ("fcn", "dilated"):
                    results.append(compiled_variant(step, args, device, batch))
                units = args.volume if step == "segment" else batch * (3 if step == "adversarial" else 1)
                extra = {"dilation": dilation} if dilation is not None else {}
                print(json.dumps({"peer": "torch " + torch.__version__, "step": step, "batch": batch, **extra,
                                  "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{args.threads}",
                                  **best, "patches_per_s": units / best["median_ms"] * 1e3, "variants": results}),
                      flush=True)

if __name__ == "__main__":
    main()
