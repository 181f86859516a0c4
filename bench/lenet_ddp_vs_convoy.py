#!/usr/bin/python3
"""Data-parallel scaling on this machine: LeNet on Fashion-MNIST, batch 64 per rank, 1 thread
per rank. convoy on 1 rank, convoy on 2 ranks (mpirun) summing gradients through shared memory
(the default) and over MPI on communication threads (--allreduce mpi), and PyTorch
DistributedDataParallel (gloo) on 2 processes, taking turns, each the median of --repeats runs
of --iters steps. Prints global images/s, convoy's 2-rank scaling, the exposed communication
share of a step, and convoy against DDP.

usage: bench/lenet_ddp_vs_convoy.py [--convoy build/convoy] [--iters 300] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

os.environ["OPENBLAS_NUM_THREADS"] = "1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convoy_runs import solver_lines, steady_images_per_second  # noqa: E402
# A progress line every 50 steps: rank 0 prints while the other rank goes on to the next step's
# all-reduce and waits for it, so the 5-step windows of the single-process benchmarks would
# count logging as communication.
LOG_EVERY = 50
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader",
           "OMPI_MCA_oob_tcp_if_include": "lo", "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def convoy_run(binary, data, ranks, iters, work, allreduce="shared-memory"):
    solver = os.path.join(work, "solver.prototxt")
    with open(solver, "w") as f:
        f.write(f'net: "{ROOT}/configs/lenet_fashion_mnist.prototxt"\ntrain_data: "{data}/train"\n'
                f"batch_size: 64\n{solver_lines(iters, LOG_EVERY)}base_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\n"
                f"seed: 1\n")
    run = os.path.join(work, f"run{ranks}")
    cmd = [binary, "train", "--solver", solver, "--run-dir", run, "--overwrite", "--threads", "1", "--allreduce", allreduce]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks)] + cmd
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **MPI_ENV}).stdout
    with open(os.path.join(run, "metrics.jsonl")) as f:
        windows = [json.loads(line) for line in f if "step_ms" in line][1:]  # after the warm-up
    os.remove(os.path.join(run, "metrics.jsonl"))
    exposed = sum(w["comm_exposed_ms"] for w in windows) / sum(w["step_ms"] for w in windows)
    return steady_images_per_second(out), exposed


DDP_WORKER = r'''
import os, sys, time, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[3])
from torch_models import lenet
rank, iters = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=rank, world_size=2)
torch.manual_seed(1)
model = torch.nn.parallel.DistributedDataParallel(lenet())
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x, y = torch.randn(64 * 8, 1, 28, 28), torch.randint(0, 10, (64 * 8,))
def step(i):
    j = (i % 8) * 64
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x[j:j + 64]), y[j:j + 64]).backward()
    opt.step()
for i in range(5): step(i)
dist.barrier(); t = time.perf_counter()
for i in range(iters): step(i)
dist.barrier()
if rank == 0: print(2 * 64 * iters / (time.perf_counter() - t))
'''


def ddp_run(iters, work):
    script = os.path.join(work, "ddp_worker.py")
    with open(script, "w") as f:
        f.write(DDP_WORKER)
    here = os.path.dirname(os.path.abspath(__file__))
    procs = [subprocess.Popen([sys.executable, script, str(r), str(iters), here], stdout=subprocess.PIPE, text=True)
             for r in range(2)]
    outs = [p.communicate()[0] for p in procs]
    return float(outs[0].strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convoy", default=os.path.join(ROOT, "build/convoy"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/fashion-mnist"))
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        one, two, two_mpi, ddp = [], [], [], []
        for _ in range(a.repeats):  # taking turns, so the machine's drift meets all four alike
            one.append(convoy_run(a.convoy, a.data, 1, a.iters, work))
            two.append(convoy_run(a.convoy, a.data, 2, a.iters, work))
            two_mpi.append(convoy_run(a.convoy, a.data, 2, a.iters, work, "mpi"))
            ddp.append(ddp_run(a.iters, work))
    one_ips = statistics.median(r[0] for r in one)
    ddp_ips = statistics.median(ddp)
    print(f"LeNet, batch 64 per rank, 1 thread per rank, {a.iters} steps, median of {a.repeats}")
    print(f"{'run':44} {'images/s':>9} {'x 1 rank':>9} {'comm exposed':>13}")
    print(f"{'convoy, 1 rank':44} {one_ips:9.0f}")
    for name, runs in (("convoy, 2 ranks, shared memory (default)", two), ("convoy, 2 ranks, --allreduce mpi", two_mpi)):
        ips, exposed = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"{name:44} {ips:9.0f} {ips / one_ips:8.2f}x {100 * exposed:12.1f}%")
    print(f"{'PyTorch DDP gloo, 2 procs':44} {ddp_ips:9.0f} {ddp_ips / one_ips:8.2f}x")
    two_ips = statistics.median(r[0] for r in two)
    print(f"convoy 2 ranks (default) / PyTorch DDP 2 procs: {two_ips / ddp_ips:.2f}x")


if __name__ == "__main__":
    main()
