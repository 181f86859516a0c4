#!/usr/bin/python3
"""CPU training throughput on ResNet-20 (configs/resnet20_cifar.prototxt): convoy against PyTorch
(Debian's python3-torch) with the same net, batch 64, SGD with momentum, equal thread counts,
run one after the other. convoy trains on real photos (Fashion-MNIST written as PNG/JPEG and
converted to 3 x 32 x 32 by `convoy convert --format imagefolder`, with the config's crop and flip
augmentation in its prefetch thread); PyTorch trains on tensors of the same shape already in
memory. Prints images/s for both and the ratio: medians of --repeats runs of --iters steps.

usage: bench/resnet20_cpu_vs_pytorch.py [--convoy build/convoy] [--iters 30] [--repeats 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # PyTorch's best setting here (../shared/PLATFORM.md)
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convoy_runs import convoy_train_images_per_second  # noqa: E402
from torch_models import resnet20, train_steps_per_second  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_photos(build, work, count):
    photos, data = os.path.join(work, "photos"), os.path.join(work, "data")
    subprocess.run([os.path.join(build, "bench/make_photo_folder"), photos, str(count)], check=True)
    subprocess.run([os.path.join(build, "convoy"), "convert", "--format", "imagefolder", "--in", photos,
                    "--size", "32x32", "--out", data], check=True, capture_output=True)
    return os.path.join(data, "train")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    binary = os.path.join(args.build, "convoy")
    print(f"ResNet-20, 3 x 32 x 32, batch 64, {args.iters} steps, median of {args.repeats}; "
          f"PyTorch {torch.__version__}")
    print(f"{'threads':>7} {'convoy img/s':>13} {'PyTorch img/s':>14} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as work:
        train_dir = make_photos(args.build, work, 2000)
        for threads in (1, 2):
            # convoy and PyTorch take turns, so the machine's drift over minutes meets both alike.
            torch.set_num_threads(threads)
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(convoy_train_images_per_second(
                    binary, f"{ROOT}/configs/resnet20_cifar.prototxt", train_dir, threads, args.iters, work,
                    "base_lr: 0.05\nweight_decay: 0.0001\n"))
                theirs.append(train_steps_per_second(resnet20, (3, 32, 32), 64, args.iters, "cpu"))
            ours, theirs = statistics.median(ours), statistics.median(theirs)
            print(f"{threads:7d} {ours:13.0f} {theirs:14.0f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
