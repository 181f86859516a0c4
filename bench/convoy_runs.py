"""convoy's side of the CPU benchmarks: `convoy train` on a net, timed by convoy itself.

Like the PyTorch runs beside them, the first WARMUP steps (oneDNN building its kernels, first
touches of memory) are left out: convoy prints images/s every WARMUP steps and the windows after
the first are added up."""
import os
import re
import subprocess

WARMUP = 5


def solver_lines(iters, window=WARMUP):
    """SolverSpec fields for `iters` timed steps after a warm-up window, with a progress line every
    `window` steps (at least WARMUP; `iters` a multiple of it)."""
    return f"max_iter: {iters + window}\ndisplay: {window}\n"


def steady_images_per_second(stdout):
    """Images/s over the progress windows after the first, from `convoy train`'s output."""
    windows = [(int(m.group(1)), float(m.group(2)))
               for m in re.finditer(r"^iter (\d+)/\d+ .* (\d+) images/s", stdout, re.MULTILINE)]
    steps = seconds = 0.0
    for (before, _), (done, ips) in zip(windows, windows[1:]):
        steps += done - before
        seconds += (done - before) / ips  # in units of one global batch
    return steps / seconds


def convoy_train_images_per_second(binary, net, train_dir, threads, iters, workdir, solver=""):
    """Images/s that `convoy train` reports for `iters` steps of batch 64 with SGD (momentum 0.9)
    on the converted dataset in train_dir, after the warm-up; `solver` adds or sets SolverSpec fields."""
    path = os.path.join(workdir, "solver.prototxt")
    with open(path, "w") as f:
        f.write(f'net: "{net}"\ntrain_data: "{train_dir}"\nbatch_size: 64\n{solver_lines(iters)}'
                f"momentum: 0.9\nseed: 1\n{solver}")
    out = subprocess.run([binary, "train", "--solver", path, "--run-dir", os.path.join(workdir, "run"), "--overwrite",
                          "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
    return steady_images_per_second(out)
