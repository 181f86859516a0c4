#!/usr/bin/env python3
"""GPU training throughput, convoy against PyTorch eager (cuDNN) on the same GPU, same nets,
same batch, data resident on the GPU. Prints images/s for both and the ratio (medians of 3), in
three arithmetics: plain fp32 (convoy's default; PyTorch with TF32 turned off), TF32 tensor
cores (convoy's `precision: TF32`; PyTorch with allow_tf32 on for cuDNN and matmuls: its
convolutions' default), and bf16 (convoy's `precision: BFLOAT16`; PyTorch's autocast to
bfloat16 on channels-last tensors with cudnn.benchmark, the fastest eager setting it offers).

usage: bench/gpu_vs_pytorch.py [--convoy build/convoy] [--iters 200] [--nets lenet,cifar,resnet20,resnet50]
"""
import argparse
import re
import statistics
import subprocess
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_models import NETS, train_steps_per_second  # noqa: E402


def convoy_images_per_second(binary, net_file, batch, iters, precision):
    out = subprocess.run([binary, "time", "--net", net_file, "--batch", str(batch), "--iters", str(iters),
                          "--device", "cuda", "--precision", precision], check=True, capture_output=True,
                         text=True).stdout
    return float(re.search(r"ms, (\d+) images/s", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convoy", default="build/convoy")
    ap.add_argument("--iters", type=int, default=200, help="timed steps (a tenth for ResNet-50)")
    ap.add_argument("--nets", default="lenet,cifar,resnet20,resnet50")
    args = ap.parse_args()
    batches = {"lenet": 64, "cifar": 128, "resnet20": 128, "resnet50": 64}
    print(f"GPU: {torch.cuda.get_device_name(0)}; PyTorch {torch.__version__}, "
          f"cuDNN {torch.backends.cudnn.version()}")
    print(f"{'net':8} {'batch':>5} {'arithmetic':>10} {'convoy img/s':>13} {'PyTorch img/s':>14} {'ratio':>6}")
    for name in args.nets.split(","):
        net, shape, config = NETS[name]
        batch, iters = batches[name], args.iters // 10 if name == "resnet50" else args.iters
        for precision in ("float32", "tf32", "bf16"):
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = precision != "float32"
            torch.backends.cudnn.benchmark = precision == "bf16"
            autocast = torch.bfloat16 if precision == "bf16" else None
            ours = statistics.median(convoy_images_per_second(args.convoy, config, batch, iters, precision)
                                     for _ in range(3))
            theirs = statistics.median(train_steps_per_second(net, shape, batch, iters, "cuda", autocast=autocast)
                                       for _ in range(3))
            print(f"{name:8} {batch:5d} {precision:>10} {ours:13.0f} {theirs:14.0f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
