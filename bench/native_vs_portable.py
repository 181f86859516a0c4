#!/usr/bin/python3
"""The default build (any x86-64-v3 processor; AVX-512 kernels chosen at run time) against
CONVOY_NATIVE=ON (-march=native) on this machine: `convoy time`'s training step (forward,
backward, update) of LeNet and ResNet-20, batch 64, 1 thread, the two binaries taking turns,
medians of --repeats.

usage: bench/native_vs_portable.py PORTABLE_CONVOY NATIVE_CONVOY [--repeats 5]
  e.g. cmake -S . -B build-native -DCONVOY_NATIVE=ON && cmake --build build-native -j
       bench/native_vs_portable.py build/convoy build-native/convoy
"""
import argparse
import os
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETS = [("LeNet", "lenet_fashion_mnist.prototxt", 50), ("ResNet-20", "resnet20_cifar.prototxt", 5)]


def images_per_second(convoy, net, iters):
    out = subprocess.run([convoy, "time", "--net", os.path.join(ROOT, "configs", net), "--batch", "64",
                          "--iters", str(iters)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"ms, (\d+) images/s", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portable")
    ap.add_argument("native")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print("| net | portable images/s | native images/s | portable / native |")
    print("| --- | --- | --- | --- |")
    for name, net, iters in NETS:
        runs = {"portable": [], "native": []}
        for turn in range(args.repeats):
            for which in ("portable", "native") if turn % 2 == 0 else ("native", "portable"):
                runs[which].append(images_per_second(getattr(args, which), net, iters))
        p, n = statistics.median(runs["portable"]), statistics.median(runs["native"])
        print(f"| {name} | {p:,.0f} | {n:,.0f} | {p / n:.3f} |", flush=True)


if __name__ == "__main__":
    main()
