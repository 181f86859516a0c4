#!/usr/bin/python3
"""CPU training throughput: convoy against PyTorch (Debian's python3-torch), Caffe's LeNet on
Fashion-MNIST, batch 64, SGD(0.01, momentum 0.9, weight decay 5e-4), both on the same data
preloaded in memory, run one after the other with equal thread counts. Prints images/s for
both and the ratio: medians of --repeats runs of --iters steps each.

usage: bench/lenet_cpu_vs_pytorch.py [--convoy build/convoy] [--iters 300] [--repeats 3]
"""
import argparse
import gzip
import os
import statistics
import sys
import tempfile

# PyTorch's threads and OpenBLAS's own threads fight on two cores: pin OpenBLAS to one, which is
# PyTorch's best configuration here (see ../shared/PLATFORM.md). Must precede importing torch.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convoy_runs import convoy_train_images_per_second  # noqa: E402
from torch_models import lenet, train_steps_per_second  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def torch_images_per_second(threads, iters):
    torch.set_num_threads(threads)
    images = read_idx(f"{FASHION}/train-images-idx3-ubyte.gz").astype(np.float32)
    labels = read_idx(f"{FASHION}/train-labels-idx1-ubyte.gz").astype(np.int64)
    images = (images - images.mean()) / images.std()
    x = torch.from_numpy(images[:, None, :, :].copy())
    y = torch.from_numpy(labels.copy())
    return train_steps_per_second(lenet, (1, 28, 28), 64, iters, "cpu", x, y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convoy", default=os.path.join(ROOT, "build/convoy"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/fashion-mnist"),
                    help="converted Fashion-MNIST (launch/demo makes it)")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(f"{args.data}/train/manifest.prototxt"):
        sys.exit(f"{args.data}/train: no converted data; run launch/demo (or convoy convert) first")
    print(f"LeNet, Fashion-MNIST, batch 64, {args.iters} steps, median of {args.repeats}; "
          f"PyTorch {torch.__version__}")
    print(f"{'threads':>7} {'convoy img/s':>13} {'PyTorch img/s':>14} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as work:
        for threads in (1, 2):
            # convoy and PyTorch take turns, so the machine's drift over minutes meets both alike.
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(convoy_train_images_per_second(
                    args.convoy, f"{ROOT}/configs/lenet_fashion_mnist.prototxt", f"{args.data}/train", threads,
                    args.iters, work, "base_lr: 0.01\nweight_decay: 0.0005\n"))
                theirs.append(torch_images_per_second(threads, args.iters))
            ours, theirs = statistics.median(ours), statistics.median(theirs)
            print(f"{threads:7d} {ours:13.0f} {theirs:14.0f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
