#!/usr/bin/python3
"""Does convoy's chunked shuffle (io/shard_plan.h) cost accuracy against a full shuffle?

ResNet-20 (configs/resnet20_cifar.prototxt: crops and flips) trains on CIFAR-shaped photos --
Fashion-MNIST images written as photos and converted to 3 x 32 x 32, which the converter stores
sorted by class, the hard case for any shuffle that reads storage in pieces -- for --epochs epochs
(SGD 0.1, momentum 0.9, weight decay 5e-4, cosine, batch 64, one process of 2 threads), once with
the chunked order and once with `full_shuffle: true`, for each seed. Prints each run's final test
accuracy, the means, and how mixed the batches are: distinct classes in a batch of 64 and the
most of one class, averaged over epoch 0 (from --trace-samples and the shards' labels, read with
h5py).

usage: bench/shuffle_vs_full.py [--build build] [--photos 12000] [--epochs 6] [--seeds 1,2,3]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
from collections import Counter

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def labels_of(dataset):
    """The dataset's labels in sample order: its shards', in the manifest's order."""
    files = re.findall(r'file: "([^"]+)"', open(f"{dataset}/manifest.prototxt").read())
    labels = []
    for name in files:
        with h5py.File(f"{dataset}/{name}", "r") as f:
            labels.extend(int(v) for v in f["labels"][:])
    return labels


def batch_mix(trace, labels, batch=64):
    """Mean distinct classes per batch, and mean count of the commonest class, in epoch 0."""
    samples = [int(s) for e, s in (line.split() for line in open(trace)) if e == "0"]
    distinct, commonest = [], []
    for b in range(0, len(samples) - batch + 1, batch):
        counts = Counter(labels[s] for s in samples[b:b + batch])
        distinct.append(len(counts))
        commonest.append(max(counts.values()))
    return statistics.mean(distinct), statistics.mean(commonest)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--photos", type=int, default=12000)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    convoy = f"{args.build}/convoy"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([f"{args.build}/bench/make_photo_folder", f"{tmp}/photos", str(args.photos), "32"], check=True)
        subprocess.run([convoy, "convert", "--format", "imagefolder", "--in", f"{tmp}/photos", "--size", "32x32",
                        "--val-fraction", "0.2", "--shards", "4", "--out", f"{tmp}/data"], check=True,
                       capture_output=True)
        labels = labels_of(f"{tmp}/data/train")
        print(f"ResNet-20, {len(labels)} training and {args.photos - len(labels)} test photos (3 x 32 x 32, stored "
              f"sorted by class), {args.epochs:g} epochs, batch 64")
        print(f"{'seed':>4} {'order':>8} {'test accuracy':>13} {'classes/batch':>13} {'commonest':>9}")
        results = {"chunked": [], "full": []}
        for seed in args.seeds.split(","):
            for order in ("chunked", "full"):
                run = f"{tmp}/{order}-{seed}"
                os.makedirs(run)
                with open(f"{run}/solver.prototxt", "w") as f:
                    f.write(f'net: "{ROOT}/configs/resnet20_cifar.prototxt"\ntrain_data: "{tmp}/data/train"\n'
                            f'test_data: "{tmp}/data/val"\nbatch_size: 64\nmax_epochs: {args.epochs}\n'
                            f"base_lr: 0.1\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: COSINE\n"
                            f"display: 1000\nseed: {seed}\nfull_shuffle: {str(order == 'full').lower()}\n")
                out = subprocess.run([convoy, "train", "--solver", f"{run}/solver.prototxt", "--run-dir",
                                      f"{run}/run", "--threads", "2", "--trace-samples", f"{run}/trace"],
                                     check=True, capture_output=True, text=True).stdout
                accuracy = float(re.findall(r"^test  iter \d+: loss \S+ accuracy ([0-9.]+)", out, re.M)[-1])
                distinct, commonest = batch_mix(f"{run}/trace.rank0", labels)
                results[order].append(accuracy)
                print(f"{seed:>4} {order:>8} {100 * accuracy:>12.2f}% {distinct:>13.2f} {commonest:>9.2f}", flush=True)
        chunked, full = statistics.mean(results["chunked"]), statistics.mean(results["full"])
        spread = statistics.pstdev(results["chunked"] + results["full"])
        print(f"mean: chunked {100 * chunked:.2f}%, full {100 * full:.2f}%, difference "
              f"{100 * (chunked - full):+.2f} points (spread of all runs: {100 * spread:.2f})")


if __name__ == "__main__":
    main()
