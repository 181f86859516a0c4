#!/usr/bin/python3
"""What watching a run costs: `convoy train` with the step timeline and TensorBoard on against
both off, taking turns in one run, medians of --repeats.

"On" is the worst case: --trace covers every timed step (by default it covers 10), and with a
progress line every 5 steps metrics.jsonl and the TensorBoard event files get a line every 5
steps (the shipped solvers write one every 200). LeNet on Fashion-MNIST, batch 64, one rank,
1 thread: the net whose layers are shortest, so a fixed cost per layer weighs most. Timed: the
--iters steps after 5 warm-up steps; the trace is written once, after them (in a last window of
5 steps that neither mode times), and the time that takes is printed on its own.

usage: bench/watch_overhead.py [--build build] [--repeats 7] [--iters 600]
(needs data/fashion-mnist/train: launch/demo converts it)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convoy_runs import WARMUP, steady_images_per_second  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(convoy, data, iters, work, on):
    """Images/s over the timed steps, and the milliseconds writing the trace took (on)."""
    with open(f"{work}/solver.prototxt", "w") as f:
        f.write(f'net: "{ROOT}/configs/lenet_fashion_mnist.prototxt"\ntrain_data: "{data}"\nbatch_size: 64\n'
                f"max_iter: {iters + 2 * WARMUP}\ndisplay: {WARMUP}\nmomentum: 0.9\nseed: 1\n")
    flags = ["--tensorboard", "--trace", f"{work}/trace.json", "--trace-steps", f"0:{iters + WARMUP}"] if on else []
    out = subprocess.run([convoy, "train", "--solver", f"{work}/solver.prototxt", "--run-dir", f"{work}/run",
                          "--overwrite", "--threads", "1", *flags], check=True, capture_output=True, text=True).stdout
    timed = out[:out.rindex("\niter ")]  # the last window holds the trace's writing: not timed
    written = re.search(r"^trace: .* written in ([0-9.]+) ms", out, re.M)
    return steady_images_per_second(timed), float(written.group(1)) if written else 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default=f"{ROOT}/build")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iters", type=int, default=600)
    args = parser.parse_args()
    data = f"{ROOT}/data/fashion-mnist/train"
    if not os.path.exists(f"{data}/manifest.prototxt"):
        sys.exit(f"{data} is missing: run launch/demo first (it converts Fashion-MNIST)")
    runs, writes = {"off": [], "on": []}, []
    with tempfile.TemporaryDirectory() as work:
        for turn in range(args.repeats):
            for mode in ("off", "on") if turn % 2 == 0 else ("on", "off"):
                ips, write_ms = train(f"{args.build}/convoy", data, args.iters, work, mode == "on")
                runs[mode].append(ips)
                if mode == "on":
                    writes.append(write_ms)
                print(f"turn {turn + 1} {mode:>3}: {ips:8.0f} images/s", flush=True)
        trace_mb = os.path.getsize(f"{work}/trace.json") / 1e6
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    print(f"\nLeNet, batch 64, 1 thread, {args.iters} timed steps, medians of {args.repeats}:")
    print(f"  off (no trace, no TensorBoard):           {off:8.0f} images/s")
    print(f"  on (every step traced, TensorBoard):      {on:8.0f} images/s")
    print(f"  cost while tracing: {100 * (off / on - 1):+.2f} % of step time (on/off speed ratio {on / off:.4f})")
    print(f"  writing the trace of {args.iters + WARMUP} steps ({trace_mb:.1f} MB), once: "
          f"{statistics.median(writes):.0f} ms (median)")
    spread = (max(runs["off"]) - min(runs["off"])) / off
    print(f"  run-to-run spread of 'off' alone: {100 * spread:.1f} % (max - min over median)")


if __name__ == "__main__":
    main()
