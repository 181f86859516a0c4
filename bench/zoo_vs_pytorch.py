#!/usr/bin/env python3
"""Whole training steps (forward, backward, SGD update) of a zoo of nets, convoy against PyTorch
2.x on the same CPU cores: each net is read from its config in configs/ and built in PyTorch
layer by layer from the same text (so both sides train the very same net; their parameter
counts are checked equal), batch as listed,
random data already in memory, 1 and 2 threads, the two taking turns, medians of 3.
convoy's number is `convoy time`'s whole-step time.

--precision bf16: convoy's mixed precision (bf16 convolutions: oneDNN's AMX / AVX-512 BF16
kernels where the processor has them) against PyTorch's CPU autocast to bfloat16 on channels-last
tensors (its fast path for bf16 on oneDNN); both keep fp32 weights.

Usage: /var/tmp/torch-venv/bin/python bench/zoo_vs_pytorch.py [--threads 1,2] [--repeats 3] [--only NAME]
       [--precision float32|bf16]
"""
import contextlib
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, config, batch, input side to set in the data layer or None to keep the config's)
ZOO = [
    ("LeNet", "configs/lenet_fashion_mnist.prototxt", 64, None),
    ("ResNet-20", "configs/resnet20_cifar.prototxt", 64, None),
    ("VGG with BatchNorm", "configs/vgg_small_photos.prototxt", 32, 32),
    ("AlexNet-style", "configs/alexnet_64.prototxt", 32, None),
    ("ResNet-18", "configs/resnet18_photos.prototxt", 16, 64),
    ("MobileNet-v1-style", "configs/mobilenet_64.prototxt", 32, None),
    ("DenseNet-style", "configs/densenet_32.prototxt", 32, None),
]


# ---- the protobuf text format, as much of it as nets use ----

TOKEN = re.compile(r'\s*(?:#[^\n]*\n?)*\s*("(?:[^"\\]|\\.)*"|[{}:]|[^\s{}:"#]+)')


def parse_text_proto(text):
    """Messages as dicts; every field a list of values (strings, numbers, enum names, dicts)."""
    tokens, pos = [], 0
    while True:
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        tokens.append(m.group(1))
        pos = m.end()

    def message(i):
        fields = {}
        while i < len(tokens) and tokens[i] != "}":
            name = tokens[i]
            i += 1
            if tokens[i] == ":":
                i += 1
            if tokens[i] == "{":
                value, i = message(i + 1)
                i += 1  # the closing brace
            else:
                raw = tokens[i]
                i += 1
                value = raw[1:-1] if raw.startswith('"') else (
                    float(raw) if re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", raw) else raw)
            fields.setdefault(name, []).append(value)
        return fields, i

    return message(0)[0]


def get(msg, name, default=None):
    return msg.get(name, [default])[0] if msg else default


# ---- the same net in PyTorch ----

class ProtoNet(nn.Module):
    """A NetSpec run as PyTorch modules over named blobs; lazy modules take their input sizes from
    the first batch, as convoy's layers take theirs from their bottoms."""

    def __init__(self, spec):
        super().__init__()
        self.layers = []
        self.mods = nn.ModuleDict()
        self.loss = next(get(l, "top") for l in spec["layer"] if get(l, "type") == "SoftmaxWithLoss")
        for layer in spec["layer"]:
            kind, name = get(layer, "type"), get(layer, "name")
            mod = None
            if kind == "Convolution":
                p = get(layer, "convolution_param", {})
                mod = nn.LazyConv2d(int(get(p, "num_output")), int(get(p, "kernel_size")),
                                    int(get(p, "stride", 1)), int(get(p, "pad", 0)),
                                    groups=int(get(p, "group", 1)), bias=get(p, "bias_term", "true") != "false")
            elif kind == "InnerProduct":
                mod = nn.LazyLinear(int(get(get(layer, "inner_product_param"), "num_output")))
            elif kind == "BatchNorm":
                p = get(layer, "batch_norm_param", {})
                mod = nn.LazyBatchNorm2d(eps=float(get(p, "eps", 1e-5)), affine=get(p, "affine", "true") != "false")
            elif kind == "Dropout":
                mod = nn.Dropout(float(get(get(layer, "dropout_param"), "dropout_ratio", 0.5)))
            if mod is not None:
                self.mods[name] = mod
            self.layers.append((kind, name, layer))

    def forward(self, images, labels):
        blobs = {}
        for kind, name, layer in self.layers:
            bottoms = [blobs.get(b) for b in layer.get("bottom", [])]
            tops = layer.get("top", [])
            if kind == "Data":
                blobs[tops[0]], blobs[tops[1]] = images, labels
                continue
            x = bottoms[0] if bottoms else None
            if kind in ("Convolution", "BatchNorm", "Dropout"):
                y = self.mods[name](x)
            elif kind == "InnerProduct":
                y = self.mods[name](torch.flatten(x, 1))
            elif kind in ("ReLU", "LeakyReLU"):
                slope = float(get(get(layer, "relu_param"), "negative_slope", 0.01 if kind == "LeakyReLU" else 0))
                y = F.leaky_relu(x, slope) if slope else F.relu(x)
            elif kind == "Pooling":
                p = get(layer, "pooling_param", {})
                is_max = get(p, "pool", "MAX") == "MAX"
                if get(p, "global_pooling") == "true":
                    y = F.adaptive_max_pool2d(x, 1) if is_max else F.adaptive_avg_pool2d(x, 1)
                else:
                    k, s, pad = int(get(p, "kernel_size")), int(get(p, "stride", 1)), int(get(p, "pad", 0))
                    # Caffe's (convoy's) pooling rounds its output size up.
                    y = F.max_pool2d(x, k, s, pad, ceil_mode=True) if is_max else \
                        F.avg_pool2d(x, k, s, pad, ceil_mode=True, count_include_pad=True)
            elif kind == "Eltwise":
                coeffs = [float(c) for c in get(layer, "eltwise_param", {}).get("coeff", [])] or [1.0] * len(bottoms)
                y = sum(c * b for c, b in zip(coeffs, bottoms))
            elif kind == "Concat":
                y = torch.cat(bottoms, int(get(get(layer, "concat_param"), "axis", 1)))
            elif kind == "Flatten":
                y = torch.flatten(x, 1)
            elif kind == "SoftmaxWithLoss":
                y = F.cross_entropy(torch.flatten(x, 1), bottoms[1])
            elif kind == "Accuracy":
                continue  # convoy computes it too, at a cost of microseconds
            else:
                raise SystemExit(f"zoo_vs_pytorch: no PyTorch form for layer type {kind}")
            blobs[tops[0]] = y
        return blobs[self.loss]


def with_side(text, side):
    """The config with its data layer's height and width set to side (None: as it is)."""
    if side is None:
        return text
    return re.sub(r"height: \d+ width: \d+", f"height: {side} width: {side}", text, count=1)


def same_parameters(convoy, path, spec, work):
    """Both nets' parameter counts (BatchNorm's running statistics included), which must agree:
    the check that the PyTorch net built from the text is convoy's."""
    data = get(spec["layer"][0], "data_param")
    shape = (int(get(data, "channels")), int(get(data, "height")), int(get(data, "width")))
    model = ProtoNet(spec)
    model(torch.randn(2, *shape), torch.tensor([0, 1]))
    theirs = sum(p.numel() for p in model.parameters()) + \
        sum(b.numel() for k, b in model.named_buffers() if "num_batches" not in k)
    timing = os.path.join(work, "params.json")
    subprocess.run([convoy, "time", "--net", path, "--batch", "2", "--iters", "1", "--json", timing], check=True,
                   capture_output=True)
    ours = sum(l["param_floats"] for l in json.load(open(timing))["layers"])
    if ours != theirs:
        raise SystemExit(f"zoo_vs_pytorch: {path}: convoy's net has {ours} parameters, the PyTorch one {theirs}")
    return ours


def torch_step_ms(spec, batch, iters, precision="float32"):
    data = get(spec["layer"][0], "data_param")
    shape = (int(get(data, "channels")), int(get(data, "height")), int(get(data, "width")))
    torch.manual_seed(1)
    model = ProtoNet(spec)
    images = torch.randn(batch * 4, *shape)
    labels = torch.randint(0, 10, (batch * 4,))
    model(images[:batch], labels[:batch])  # sizes the lazy modules
    bf16 = precision == "bf16"
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step(i):
        j = (i % 4) * batch
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = model(images[j:j + batch], labels[j:j + batch])
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(iters):
        step(i)
    return (time.perf_counter() - start) / iters * 1e3


def convoy_step_ms(convoy, path, batch, iters, threads, precision="float32"):
    out = subprocess.run([convoy, "time", "--net", path, "--batch", str(batch), "--iters", str(iters),
                          "--threads", str(threads), "--precision", precision], check=True, capture_output=True,
                         text=True).stdout
    return float(re.search(r"training step \(forward \+ backward \+ update\): ([0-9.]+) ms", out).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--only", default="")
    ap.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    args = ap.parse_args()
    convoy = os.path.join(args.build, "convoy")
    threads = [int(t) for t in args.threads.split(",")]
    arithmetic = "fp32" if args.precision == "float32" else "bf16 convolutions (PyTorch: autocast, channels-last)"
    print(f"convoy against PyTorch {torch.__version__}: ms per training step (forward, backward, SGD update), "
          f"{arithmetic}, medians of {args.repeats}, turns taken; ratio = PyTorch ms / convoy ms (above 1: convoy "
          f"faster)")
    print("| net | parameters | batch x C x H | " +
          " | ".join(f"{t} thr convoy | PyTorch | ratio" for t in threads) + " |")
    print("| --- | --- | --- | " + " | ".join("--- | --- | ---" for _ in threads) + " |")
    ratios = []
    with tempfile.TemporaryDirectory() as work:
        for name, config, batch, side in ZOO:
            if args.only and args.only.lower() not in name.lower():
                continue
            text = with_side(open(os.path.join(ROOT, config)).read(), side)
            path = os.path.join(work, os.path.basename(config))
            with open(path, "w") as f:
                f.write(text)
            spec = parse_text_proto(text)
            params = same_parameters(convoy, path, spec, work)
            data = get(spec["layer"][0], "data_param")
            cells = []
            for t in threads:
                torch.set_num_threads(t)
                ours, theirs = [], []
                for turn in range(args.repeats):
                    for side_first in ((0, 1) if turn % 2 == 0 else (1, 0)):
                        if side_first == 0:
                            ours.append(convoy_step_ms(convoy, path, batch, args.iters, t, args.precision))
                        else:
                            theirs.append(torch_step_ms(spec, batch, args.iters, args.precision))
                a, b = statistics.median(ours), statistics.median(theirs)
                ratios.append((b / a, name, t))
                cells.append(f"{a:.1f} | {b:.1f} | {b / a:.2f}")
            print(f"| {name} | {params / 1e6:.2f} M | {batch} x {int(get(data, 'channels'))} x {int(get(data, 'height'))} | "
                  + " | ".join(cells) + " |")
            sys.stdout.flush()
    worst = min(ratios)
    print(f"\nworst ratio {worst[0]:.2f} ({worst[1]}, {worst[2]} thread(s)); "
          f"{sum(r >= 1.3 for r, _, _ in ratios)} of {len(ratios)} at 1.3x or more")


if __name__ == "__main__":
    main()
