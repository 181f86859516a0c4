#!/usr/bin/env python3
"""Per-layer CPU speed: each convolution and pooling shape of a grid, convoy's layer against
PyTorch's same layer, forward and backward milliseconds side by side, with the ratio
(PyTorch ms / convoy ms: above 1, convoy is faster). Shapes where convoy loses are the work list.

Each shape is measured inside a net the way training runs it: the layer's input comes from a
1 x 1 convolution, so its backward computes the input's gradient as well (PyTorch: an input
that requires grad). convoy's numbers are `convoy time`'s per-layer means; PyTorch's, the median
over the same iterations of forward and of backward (torch.autograd on one layer). The two take
turns shape by shape; each number is the median of --repeats turns. Threads equal (--threads).

usage: /var/tmp/torch-venv/bin/python bench/layers_vs_pytorch.py [--threads 1] [--repeats 3]
       (PyTorch 2.x from PyPI in a venv: ../shared/PLATFORM.md)
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, batch, channels in, size, layer); layer: ("conv", out, kernel, stride, pad[, group]) or
# ("pool", "max"|"ave", kernel, stride, pad) or ("pool", kind, "global").
SHAPES = [
    ("ResNet stem 7x7/2", 8, 3, 224, ("conv", 64, 7, 2, 3)),
    ("AlexNet stem 11x11/4 at 64px", 16, 3, 64, ("conv", 64, 11, 4, 2)),
    ("MobileNet stem 3x3/2", 16, 3, 64, ("conv", 32, 3, 2, 1)),
    ("odd size, no pad 3x3", 16, 3, 31, ("conv", 16, 3, 1, 0)),
    ("ResNet-20 3x3 16->32/2", 16, 16, 32, ("conv", 32, 3, 2, 1)),
    ("5x5 pad 2", 16, 32, 32, ("conv", 32, 5, 1, 2)),
    ("AlexNet-style 5x5 at 15px", 16, 64, 15, ("conv", 192, 5, 1, 2)),
    ("3x3 64 at 56", 8, 64, 56, ("conv", 64, 3, 1, 1)),
    ("3x3/2 64->128 at 56", 8, 64, 56, ("conv", 128, 3, 2, 1)),
    ("1x1/2 downsample 64->128", 8, 64, 56, ("conv", 128, 1, 2, 0)),
    ("1x1 pointwise 64->64 at 16", 16, 64, 16, ("conv", 64, 1, 1, 0)),
    ("3x3 128 at 28", 8, 128, 28, ("conv", 128, 3, 1, 1)),
    ("3x3 256 at 14", 8, 256, 14, ("conv", 256, 3, 1, 1)),
    ("3x3 256 at 7", 16, 256, 7, ("conv", 256, 3, 1, 1)),
    ("3x3 512 at 3 (ResNet-18 at 64 px)", 16, 512, 3, ("conv", 512, 3, 1, 1)),
    ("3x3 256 at 4 (ResNet-18 at 64 px)", 16, 256, 4, ("conv", 256, 3, 1, 1)),
    ("3x3 192->384 at 3 (AlexNet-style at 64 px)", 32, 192, 3, ("conv", 384, 3, 1, 1)),
    ("5x5 64->192 at 7 (AlexNet-style at 64 px)", 32, 64, 7, ("conv", 192, 5, 1, 2)),
    ("3x3 128 at 8", 16, 128, 8, ("conv", 128, 3, 1, 1)),
    ("pad > kernel half: 3x3 pad 2", 16, 16, 20, ("conv", 16, 3, 1, 2)),
    ("stride > kernel: 1x1/3", 16, 32, 30, ("conv", 32, 1, 3, 0)),
    ("1x1 input, 1x1 kernel", 64, 256, 1, ("conv", 256, 1, 1, 0)),
    ("DenseNet 3x3 60->12 at 32 (few outputs)", 32, 60, 32, ("conv", 12, 3, 1, 1)),
    ("DenseNet transition 1x1 72->36 at 32", 32, 72, 32, ("conv", 36, 1, 1, 0)),
    ("depthwise 3x3 64 at 56 (MobileNet)", 8, 64, 56, ("conv", 64, 3, 1, 1, 64)),
    ("depthwise 3x3/2 32 at 112 (MobileNet)", 8, 32, 112, ("conv", 32, 3, 2, 1, 32)),
    ("grouped 3x3 128 at 28, 32 groups (ResNeXt)", 8, 128, 28, ("conv", 128, 3, 1, 1, 32)),
    ("max 2/2", 16, 64, 56, ("pool", "max", 2, 2, 0)),
    ("max 3/2 (ResNet, AlexNet)", 8, 64, 112, ("pool", "max", 3, 2, 1)),
    ("max 3/1 pad 1", 16, 64, 28, ("pool", "max", 3, 1, 1)),
    ("average 2/2", 16, 64, 56, ("pool", "ave", 2, 2, 0)),
    ("average 3/2", 16, 64, 56, ("pool", "ave", 3, 2, 0)),
    ("global average", 16, 256, 7, ("pool", "ave", "global")),
]


def net_text(channels, size, layer):
    head = (f'name: "one"\nlayer {{ name: "data" type: "Data" top: "data" top: "label" '
            f"data_param {{ channels: {channels} height: {size} width: {size} }} }}\n"
            f'layer {{ name: "pre" type: "Convolution" bottom: "data" top: "pre" '
            f"convolution_param {{ num_output: {channels} kernel_size: 1 }} }}\n")
    if layer[0] == "conv":
        _, out, k, s, p, *group = layer
        body = (f'layer {{ name: "x" type: "Convolution" bottom: "pre" top: "x" convolution_param {{ '
                f"num_output: {out} kernel_size: {k} stride: {s} pad: {p} group: {group[0] if group else 1} }} }}\n")
    elif layer[2] == "global":
        body = (f'layer {{ name: "x" type: "Pooling" bottom: "pre" top: "x" pooling_param {{ '
                f"pool: {layer[1].upper()} global_pooling: true }} }}\n")
    else:
        _, kind, k, s, p = layer
        body = (f'layer {{ name: "x" type: "Pooling" bottom: "pre" top: "x" pooling_param {{ '
                f"pool: {kind.upper()} kernel_size: {k} stride: {s} pad: {p} }} }}\n")
    tail = ('layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" inner_product_param { num_output: 10 } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    return head + body + tail


def convoy_ms(convoy, work, batch, channels, size, layer, threads, iters):
    path = os.path.join(work, "net.prototxt")
    with open(path, "w") as f:
        f.write(net_text(channels, size, layer))
    out = subprocess.run([convoy, "time", "--net", path, "--batch", str(batch), "--iters", str(iters),
                          "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
    m = re.search(r"^x\s+\S+\s+([0-9.]+)\s+([0-9.]+)", out, re.M)
    return float(m.group(1)), float(m.group(2))


def torch_ms(batch, channels, size, layer, iters):
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    if layer[0] == "conv":
        _, out, k, s, p, *group = layer
        op = torch.nn.Conv2d(channels, out, k, s, p, groups=group[0] if group else 1)
    elif layer[2] == "global":
        op = torch.nn.AdaptiveAvgPool2d(1)
    else:
        _, kind, k, s, p = layer
        # Caffe's pooling (convoy's) rounds the output size up.
        op = torch.nn.MaxPool2d(k, s, p, ceil_mode=True) if kind == "max" else \
            torch.nn.AvgPool2d(k, s, p, ceil_mode=True, count_include_pad=True)
    forward, backward = [], []
    for it in range(iters + 2):
        x.grad = None
        for p_ in op.parameters():
            p_.grad = None
        t0 = time.perf_counter()
        y = op(x)
        t1 = time.perf_counter()
        y.backward(torch.ones_like(y))
        t2 = time.perf_counter()
        if it >= 2:  # warm-up left out, as convoy time does
            forward.append((t1 - t0) * 1e3)
            backward.append((t2 - t1) * 1e3)
    return statistics.median(forward), statistics.median(backward)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--only", default="", help="run only the shapes whose name contains this")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    convoy = os.path.join(args.build, "convoy")
    print(f"convoy against PyTorch {torch.__version__}, {args.threads} thread(s), forward/backward ms, "
          f"medians of {args.repeats}; ratio = PyTorch ms / convoy ms (above 1: convoy faster)\n")
    print(f"| shape | batch x C x H | convoy fwd | PyTorch fwd | ratio | convoy bwd | PyTorch bwd | ratio | "
          f"fwd+bwd ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    worst = []
    with tempfile.TemporaryDirectory() as work:
        for name, batch, channels, size, layer in SHAPES:
            if args.only not in name:
                continue
            ours, theirs = [], []
            for turn in range(args.repeats):
                order = (0, 1) if turn % 2 == 0 else (1, 0)
                for side in order:
                    if side == 0:
                        ours.append(convoy_ms(convoy, work, batch, channels, size, layer, args.threads, args.iters))
                    else:
                        theirs.append(torch_ms(batch, channels, size, layer, args.iters))
            cf, cb = (statistics.median(v[i] for v in ours) for i in (0, 1))
            tf, tb = (statistics.median(v[i] for v in theirs) for i in (0, 1))
            total = (tf + tb) / (cf + cb)
            worst.append((total, name))
            print(f"| {name} | {batch}x{channels}x{size} | {cf:.3f} | {tf:.3f} | {tf / cf:.2f} | {cb:.3f} | {tb:.3f} | "
                  f"{tb / cb:.2f} | {total:.2f} |", flush=True)
    worst.sort()
    print(f"\nworst fwd+bwd ratio: {worst[0][0]:.2f} ({worst[0][1]}); shapes below 1.0 (convoy slower): "
          f"{sum(1 for r, _ in worst if r < 1.0)} of {len(worst)}")


if __name__ == "__main__":
    main()
