"""convoy's side of the CPU benchmarks: `convoy train` on a net, timed by convoy itself."""
import os
import re
import subprocess


def convoy_train_images_per_second(binary, net, train_dir, threads, iters, workdir, solver=""):
    """Images/s that `convoy train` reports for `iters` steps of batch 64 with SGD (momentum 0.9)
    on the converted dataset in train_dir; `solver` adds or sets SolverSpec fields."""
    path = os.path.join(workdir, "solver.prototxt")
    with open(path, "w") as f:
        f.write(f'net: "{net}"\ntrain_data: "{train_dir}"\nbatch_size: 64\nmax_iter: {iters}\n'
                f"momentum: 0.9\ndisplay: 100000\nseed: 1\n{solver}")
    out = subprocess.run([binary, "train", "--solver", path, "--run-dir", os.path.join(workdir, "run"),
                          "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"s: (\d+) images/s", out).group(1))
