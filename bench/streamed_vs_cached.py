#!/usr/bin/python3
"""Training speed with the data streamed from the shards against the data held in memory.

ResNet-20 (configs/resnet20_cifar.prototxt) trains on 12,000 CIFAR-shaped photos (37 MB raw,
3 x 32 x 32) in batches of 16 on 2 threads, once with a data cache of 28 MiB, smaller than the
dataset (chunks are read again from the shards every epoch: streamed), once with 512 MiB (every
chunk held after its first read: in memory). Images/s are taken over epoch 1 only, after every
chunk was read once, from convoy's progress lines (and what the rank read in epoch 1, from its
epoch report); medians of --repeats runs, taking turns.

usage: bench/streamed_vs_cached.py [--build build] [--repeats 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTOS, BATCH, DISPLAY = 12000, 16, 50


def epoch1_images_per_second(convoy, data, cache_mb, run):
    steps = PHOTOS // BATCH
    os.makedirs(run)
    with open(f"{run}/solver.prototxt", "w") as f:
        f.write(f'net: "{ROOT}/configs/resnet20_cifar.prototxt"\ntrain_data: "{data}"\nbatch_size: {BATCH}\n'
                f"max_iter: {2 * steps + DISPLAY}\ndisplay: {DISPLAY}\nmomentum: 0.9\nseed: 1\ndata_cache_mb: {cache_mb}\n")
    out = subprocess.run([convoy, "train", "--solver", f"{run}/solver.prototxt", "--run-dir", f"{run}/run",
                          "--threads", "2"], check=True, capture_output=True, text=True).stdout
    windows = [(int(m.group(1)), float(m.group(2)))
               for m in re.finditer(r"^iter (\d+)/\d+ .* (\d+) images/s", out, re.M)]
    seconds = images = 0.0
    for (before, _), (done, ips) in zip(windows, windows[1:]):
        if steps + DISPLAY <= before and done <= 2 * steps:  # in epoch 1, every chunk read once before
            images += (done - before) * BATCH
            seconds += (done - before) * BATCH / ips
    read = re.search(r"epoch 1 read: ([0-9.]+) MB", out)
    return images / seconds, float(read.group(1)) if read else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    convoy = f"{args.build}/convoy"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([f"{args.build}/bench/make_photo_folder", f"{tmp}/photos", str(PHOTOS), "32"], check=True)
        subprocess.run([convoy, "convert", "--format", "imagefolder", "--in", f"{tmp}/photos", "--size", "32x32",
                        "--out", f"{tmp}/data"], check=True, capture_output=True)
        runs = {28: [], 512: []}
        reads = {}
        for r in range(args.repeats):
            for cache in runs:
                ips, reads[cache] = epoch1_images_per_second(convoy, f"{tmp}/data/train", cache, f"{tmp}/{cache}-{r}")
                runs[cache].append(ips)
        streamed, held = statistics.median(runs[28]), statistics.median(runs[512])
        print(f"ResNet-20, batch {BATCH}, 2 threads, epoch 1 of {PHOTOS} photos (37 MB), medians of {args.repeats}")
        print(f"streamed (data_cache_mb 28, read {reads[28]:.1f} MB in epoch 1): {streamed:.0f} images/s "
              f"(runs: {', '.join(f'{v:.0f}' for v in runs[28])})")
        print(f"in memory (data_cache_mb 512, read {reads[512]:.1f} MB in epoch 1): {held:.0f} images/s "
              f"(runs: {', '.join(f'{v:.0f}' for v in runs[512])})")
        print(f"streamed / in memory: {streamed / held:.3f}")


if __name__ == "__main__":
    main()
