#!/usr/bin/python3
"""Converting a folder of photos: `convoy convert --format imagefolder` with 1 and 2 threads
against the same work done with Pillow (Debian's python3-pil) in 1 and 2 processes: decode each
JPEG/PNG, make it RGB, resize the shorter side to 64 and crop the centre 64 x 64 (PIL's BILINEAR,
antialiased as convoy's resampler), keep the pixels in memory. The photos are Fashion-MNIST
images upscaled to 256 x 256, half PNG, half JPEG (bench/make_photo_folder). Prints files/s for
both, medians of --repeats runs. convoy's time includes writing the HDF5 shards; Pillow's does not.

usage: bench/convert_photos_vs_pil.py [--build build] [--photos 2000] [--repeats 3]
"""
import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import tempfile
import time

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pil_convert(path, side=64):
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = side / min(w, h)
        im = im.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.BILINEAR)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        return im.crop((left, top, left + side, top + side)).tobytes()


def pil_files_per_second(files, processes):
    start = time.perf_counter()
    if processes == 1:
        for f in files:
            pil_convert(f)
    else:
        with multiprocessing.Pool(processes) as pool:
            pool.map(pil_convert, files, chunksize=64)
    return len(files) / (time.perf_counter() - start)


def convoy_files_per_second(binary, photos, out, threads):
    start = time.perf_counter()
    text = subprocess.run([binary, "convert", "--format", "imagefolder", "--in", photos, "--size", "64x64",
                           "--threads", str(threads), "--out", out], check=True, capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - start
    files = int(re.search(r"converted (\d+) of", text).group(1))
    return files / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        photos = os.path.join(work, "photos")
        subprocess.run([os.path.join(args.build, "bench/make_photo_folder"), photos, str(args.photos), "256"], check=True)
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(photos) for f in fs)
        print(f"{len(files)} photos of 256 x 256 (PNG and JPEG) -> 3 x 64 x 64, median of {args.repeats}")
        print(f"{'threads':>7} {'convoy files/s':>15} {'Pillow files/s':>15} {'ratio':>6}")
        for threads in (1, 2):
            ours = statistics.median(convoy_files_per_second(os.path.join(args.build, "convoy"), photos,
                                                             os.path.join(work, "out"), threads)
                                     for _ in range(args.repeats))
            theirs = statistics.median(pil_files_per_second(files, threads) for _ in range(args.repeats))
            print(f"{threads:7d} {ours:15.0f} {theirs:15.0f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
