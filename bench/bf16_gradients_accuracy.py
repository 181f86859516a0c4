#!/usr/bin/env python3
"""What gradient_wire: BF16 costs in accuracy: the demo's training (LeNet on Fashion-MNIST, 5
epochs, global batch 64) on two ranks whose gradients go through MPI (--allreduce mpi, the path
gradients take between nodes), once with fp32 gradients and once with bfloat16 ones, for each
seed; prints each run's final test accuracy and loss. (Horovod measured its fp16 compression the
same way: final accuracy against the uncompressed run.)

Usage: bench/bf16_gradients_accuracy.py [--build build] [--seeds 1,2]
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader",
           "OMPI_MCA_oob_tcp_if_include": "lo", "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def convert(convoy, work):
    src = "/usr/share/datasets/fashion-mnist"
    for split, prefix, shards in (("train", "train", 4), ("test", "t10k", 1)):
        subprocess.run([convoy, "convert", "--format", "idx", "--images", f"{src}/{prefix}-images-idx3-ubyte.gz",
                        "--labels", f"{src}/{prefix}-labels-idx1-ubyte.gz", "--shards", str(shards),
                        "--out", os.path.join(work, split)], check=True, capture_output=True)


def train(convoy, work, wire, seed):
    solver = open(os.path.join(ROOT, "configs/lenet_fashion_mnist_solver.prototxt")).read()
    solver = re.sub(r'^net: .*$', f'net: "{ROOT}/configs/lenet_fashion_mnist.prototxt"', solver, flags=re.M)
    solver = re.sub(r'^train_data: .*$', f'train_data: "{work}/train"', solver, flags=re.M)
    solver = re.sub(r'^test_data: .*$', f'test_data: "{work}/test"', solver, flags=re.M)
    solver = re.sub(r'^seed: .*$', f"seed: {seed}", solver, flags=re.M)
    path = os.path.join(work, f"solver-{wire}-{seed}.prototxt")
    with open(path, "w") as f:
        f.write(solver + f"\ngradient_wire: {wire.upper()}\n")
    out = subprocess.run(["mpirun", "-np", "2", convoy, "train", "--solver", path, "--run-dir",
                          os.path.join(work, f"run-{wire}-{seed}"), "--allreduce", "mpi", "--threads", "1"],
                         check=True, capture_output=True, text=True, env=dict(os.environ, **MPI_ENV)).stdout
    tests = re.findall(r"^test  iter \d+: loss ([0-9.]+) accuracy ([0-9.]+)", out, re.M)
    return float(tests[-1][1]), float(tests[-1][0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seeds", default="1,2")
    args = ap.parse_args()
    convoy = os.path.join(args.build, "convoy")
    print("LeNet, Fashion-MNIST, 5 epochs, 2 ranks through MPI; final test accuracy (loss)")
    print(f"{'seed':>4} {'fp32':>16} {'bf16':>16} {'difference':>10}")
    with tempfile.TemporaryDirectory() as work:
        convert(convoy, work)
        diffs = []
        for seed in (int(s) for s in args.seeds.split(",")):
            a32, l32 = train(convoy, work, "fp32", seed)
            a16, l16 = train(convoy, work, "bf16", seed)
            diffs.append(a16 - a32)
            print(f"{seed:4d} {a32:8.4f} ({l32:.4f}) {a16:8.4f} ({l16:.4f}) {a16 - a32:+10.4f}")
        print(f"median difference in accuracy (bf16 - fp32): {statistics.median(diffs):+.4f}")


if __name__ == "__main__":
    main()
