"""The data pipeline alone, convoy against PyTorch's DataLoader, on the same photos and the same
work: read a 256 x 256 colour JPEG, decode it, take a random-resized crop (area 8-100 %, aspect
3/4-4/3) resized to 224 x 224, flip at random, normalise per channel, and batch 64 of them.

convoy reads the photos from JPEG shards (`convoy convert --encoding jpeg`, which re-encodes each
at quality 90, as the photos themselves are) on its prefetcher's 1 or 2 threads
(build/bench/data_pipeline); PyTorch reads the JPEG files through torchvision's ImageFolder with
RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor() and Normalize() on 1 or 2 DataLoader
workers. The photos are Fashion-MNIST images tinted and upscaled to 256 x 256. Prints images/s,
medians of --repeats runs, and convoy's ratio. Run it with the Python of a venv that holds torch
and torchvision from PyPI:

usage: V/bin/python bench/data_pipeline_vs_torchvision.py [--build build] [--photos 2000]
                                                           [--images 4000] [--repeats 3]
"""
import argparse
import gzip
import os
import re
import statistics
import subprocess
import tempfile
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"


def make_photos(folder, count, side=256):
    """Fashion-MNIST images as colour JPEGs: each tinted by its index, upscaled (bicubic)."""
    with gzip.open(f"{FASHION}/train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{FASHION}/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    ramp = np.linspace(0, 1, 28, dtype=np.float32)
    for i in range(count):
        g = images[i].astype(np.float32)
        tint = (i * 37) % 256
        rgb = np.stack([g, g * ramp[None, :], (255 - g) * (tint / 255)], axis=-1)
        photo = Image.fromarray(rgb.astype(np.uint8)).resize((side, side), Image.BICUBIC)
        os.makedirs(f"{folder}/class{labels[i]}", exist_ok=True)
        photo.save(f"{folder}/class{labels[i]}/{i}.jpg", quality=90)


def convoy_images_per_second(build, shards, threads, images):
    out = subprocess.run([f"{build}/bench/data_pipeline", shards, str(threads), str(images)],
                         check=True, capture_output=True, text=True).stdout
    return float(re.search(r"([0-9.]+) images/s", out).group(1))


def torch_images_per_second(photos, threads, images, mean, std):
    augment = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                                  transforms.ToTensor(), transforms.Normalize(mean, std)])
    data = torchvision.datasets.ImageFolder(photos, transform=augment)
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=threads,
                                         persistent_workers=True, drop_last=True)
    done, it = 0, iter(loader)
    next(it)  # warm-up: workers started, first batches on their way
    start = time.perf_counter()
    while done < images:
        try:
            batch, _ = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        done += batch.shape[0]
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        photos, shards = f"{tmp}/photos", f"{tmp}/shards"
        make_photos(photos, args.photos)
        subprocess.run([f"{args.build}/convoy", "convert", "--format", "imagefolder", "--in", photos,
                        "--size", "256x256", "--encoding", "jpeg", "--out", shards], check=True,
                       capture_output=True)
        manifest = open(f"{shards}/train/manifest.prototxt").read()
        mean = [float(v) / 255 for v in re.findall(r"^mean: ([0-9.e+-]+)", manifest, re.M)]
        std = [float(v) / 255 for v in re.findall(r"^std: ([0-9.e+-]+)", manifest, re.M)]
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(photos) for f in fs)
        print(f"{args.photos} photos of 256 x 256 as JPEG files ({size / 1e6:.1f} MB); batches of 64 crops "
              f"of 224 x 224; PyTorch {torch.__version__}, torchvision {torchvision.__version__}; medians of "
              f"{args.repeats} runs of {args.images} images")
        print(f"{'threads':>7} {'convoy images/s':>16} {'PyTorch images/s':>17} {'ratio':>6}")
        for threads in (1, 2):
            ours = statistics.median(convoy_images_per_second(args.build, f"{shards}/train", threads, args.images)
                                     for _ in range(args.repeats))
            theirs = statistics.median(torch_images_per_second(photos, threads, args.images, mean, std)
                                       for _ in range(args.repeats))
            print(f"{threads:>7} {ours:>16.0f} {theirs:>17.0f} {ours / theirs:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
