#!/usr/bin/env python3
"""Data-parallel training across two emulated hosts whose link is shaped to a real network's rate.

The two-hosts network namespaces (cluster/local/two-hosts) are joined by a veth pair that `tc tbf`
limits to each rate in --links. At each rate this measures:
  - a bare MPI_Allreduce and convoy's MPI communicator across the link, 1 rank on each host
    (bench/allreduce_bandwidth --mpi-only), from which the link's alpha (s per message) and beta
    (bytes/s) are fitted;
  - `convoy train` of LeNet and ResNet-20 with 1+1 and 2+2 ranks across the hosts: the median
    step, compute and exposed-communication milliseconds of metrics.jsonl's windows after the first;
  - at 1 Gbit/s, the same runs with gradient_wire: BF16 (half the bytes across), and LeNet 1+1
    with bucket_mb swept (--buckets).
Each run is repeated (--repeats) and the medians kept: a shaped TCP link's times vary from
repeat to repeat (a 1 MiB all-reduce takes 8.8 or 14.7 ms at 1 Gbit/s, whichever the protocol
falls into).
Before the links, `convoy time --json` of each net runs as many copies at once as there will be
ranks on this machine, so the per-layer times the model gets are measured under the same load,
and the shared-memory all-reduce of 2 ranks on one host is measured (the 2+2 runs sum within each
host first).

Writes everything to --out as JSON for bench/scaling_model.py --check, and prints the table.
Needs root (network namespaces and tc). Usage:
  bench/link_scaling.py [--build build] [--links none,25gbit,10gbit,1gbit] [--steps 60] [--repeats 3] [--out F]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTS = os.path.join(ROOT, "cluster/local/two-hosts")
RSH = os.path.join(ROOT, "cluster/local/netns-rsh")
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
SIZES = [65536, 262144, 1048576, 4194304, 16777216]
NETS = {"lenet": ("configs/lenet_fashion_mnist.prototxt", "fashion"),
        "resnet20": ("configs/resnet20_cifar.prototxt", "photos")}
BATCH_PER_RANK = 32
DISPLAY = 10


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def mpirun_across(work, ranks_per_host, btl, command):
    hostfile = os.path.join(work, "hostfile")
    with open(hostfile, "w") as f:
        f.write(f"10.77.0.1 slots={ranks_per_host}\n10.77.0.2 slots={ranks_per_host}\n")
    return ["ip", "netns", "exec", "convoy-a", "env"] + [f"{k}={v}" for k, v in MPI_ENV.items()] + [
        # Each "host" would bind its first rank to core 0, and both hosts' to the same core: the
        # two hosts share this machine's cores, so the ranks float over them instead.
        "mpirun", "--bind-to", "none", "--hostfile", hostfile, "-np", str(2 * ranks_per_host),
        "--mca", "plm_rsh_agent", RSH,
        "--mca", "btl", btl, "--mca", "btl_tcp_if_include", "10.77.0.0/24",
        "--mca", "oob_tcp_if_include", "10.77.0.0/24"] + command


def parse_bandwidth(out):
    """Rows of allreduce_bandwidth: bytes -> (bare GB/s, convoy GB/s, shared-memory GB/s or None, bare s)."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 7 and f[0].isdigit():
            rows[int(f[0])] = {"bare_gbs": float(f[1]), "convoy_gbs": float(f[2]),
                               "shared_gbs": None if f[4] == "-" else float(f[4]), "bare_s": float(f[6])}
    return rows


def fit_alpha_beta(rows, ranks):
    """Least-squares alpha, beta of a ring all-reduce, t = 2(p-1) alpha + 2(p-1)/p n / beta, from
    the bare MPI_Allreduce times."""
    p = ranks
    xs = [2 * (p - 1) / p * n for n in rows]
    ts = [rows[n]["bare_s"] for n in rows]
    mx, mt = statistics.mean(xs), statistics.mean(ts)
    slope = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sum((x - mx) ** 2 for x in xs)
    alpha = max((mt - slope * mx) / (2 * (p - 1)), 0.0)
    return alpha, 1.0 / slope


def make_data(build, work):
    data = {}
    src = "/usr/share/datasets/fashion-mnist"
    out = os.path.join(work, "fashion")
    run([os.path.join(build, "convoy"), "convert", "--format", "idx", "--images",
         f"{src}/train-images-idx3-ubyte.gz", "--labels", f"{src}/train-labels-idx1-ubyte.gz", "--out", out,
         "--shards", "4"])
    data["fashion"] = out
    photos = os.path.join(work, "photo-folder")
    run([os.path.join(build, "bench/make_photo_folder"), photos, "2000", "32"])
    run([os.path.join(build, "convoy"), "convert", "--format", "imagefolder", "--in", photos, "--size", "32x32",
         "--out", os.path.join(work, "photos")])
    data["photos"] = os.path.join(work, "photos/train")
    return data


def layer_times(build, work, net, copies):
    """`convoy time --json` of net at the per-rank batch, `copies` processes at once; the median
    of each layer's times over the copies."""
    procs, paths = [], []
    for c in range(copies):
        path = os.path.join(work, f"time-{os.path.basename(net)}-{copies}-{c}.json")
        paths.append(path)
        procs.append(subprocess.Popen([os.path.join(build, "convoy"), "time", "--net", os.path.join(ROOT, net),
                                       "--batch", str(BATCH_PER_RANK), "--iters", "20", "--json", path],
                                      stdout=subprocess.DEVNULL))
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"convoy time failed on {net}")
    runs = [json.load(open(p)) for p in paths]
    merged = runs[0]
    for i, layer in enumerate(merged["layers"]):
        for key in ("forward_ms", "backward_ms"):
            layer[key] = statistics.median(r["layers"][i][key] for r in runs)
    for key in ("step_ms", "update_ms"):
        merged[key] = statistics.median(r[key] for r in runs)
    return merged


def train(build, work, net, data, ranks_per_host, steps, bucket_mb, wire, tag):
    run_dir = os.path.join(work, "runs", tag)
    solver = os.path.join(work, f"solver-{tag}.prototxt")
    with open(solver, "w") as f:
        f.write(f'net: "{os.path.join(ROOT, net)}"\ntrain_data: "{data}"\nbatch_size: {BATCH_PER_RANK}\n'
                f"max_iter: {steps}\ndisplay: {DISPLAY}\nbase_lr: 0.01\nmomentum: 0.9\nseed: 1\n"
                f"bucket_mb: {bucket_mb}\ngradient_wire: {wire.upper()}\n")
    btl = "self,tcp" if ranks_per_host == 1 else "self,vader,tcp"
    out = run(mpirun_across(work, ranks_per_host, btl, [os.path.join(build, "convoy"), "train", "--solver", solver,
                                                         "--run-dir", run_dir, "--overwrite", "--threads", "1"]))
    lines = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"step_ms"' in l]
    windows = lines[1:] or lines
    buckets = re.search(r"(\d+) gradient bucket\(s\)", out)
    return {"step_ms": statistics.median(w["step_ms"] for w in windows),
            "compute_ms": statistics.median(w["compute_ms"] for w in windows),
            "comm_exposed_ms": statistics.median(w["comm_exposed_ms"] for w in windows),
            "data_wait_ms": statistics.median(w["data_wait_ms"] for w in windows),
            "buckets": int(buckets.group(1)) if buckets else None}


def train_repeated(args, work, net, data, per_host, bucket_mb, wire, tag):
    """train() --repeats times: the median of each number."""
    runs = [train(args.build, work, net, data, per_host, args.steps, bucket_mb, wire, f"{tag}-{i}")
            for i in range(args.repeats)]
    keys = ("step_ms", "compute_ms", "comm_exposed_ms", "data_wait_ms")
    return {**{k: statistics.median(r[k] for r in runs) for k in keys}, "buckets": runs[0]["buckets"],
            "step_ms_runs": [r["step_ms"] for r in runs]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--links", default="none,25gbit,10gbit,1gbit")
    ap.add_argument("--buckets", default="0.25,1,4", help="bucket_mb values for the LeNet 1+1 sweep at 1gbit")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/link_scaling.json"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("link_scaling.py needs root: network namespaces and tc")
    results = {"batch_per_rank": BATCH_PER_RANK, "threads": 1, "cores": os.cpu_count(), "links": {}, "calibration": {}}
    with tempfile.TemporaryDirectory() as work:
        data = make_data(args.build, work)
        for name, (net, _) in NETS.items():
            results["calibration"][name] = {str(p): layer_times(args.build, work, net, p) for p in (2, 4)}
        env = dict(os.environ, **MPI_ENV, OMPI_MCA_btl="self,vader", OMPI_MCA_oob_tcp_if_include="lo")
        local = run(["mpirun", "-np", "2", os.path.join(args.build, "bench/allreduce_bandwidth")] +
                    [str(s) for s in SIZES], env=env)
        results["calibration"]["shared_memory"] = parse_bandwidth(local)
        subprocess.run([HOSTS, "down"], check=False)
        run([HOSTS, "up"])
        try:
            for link in args.links.split(","):
                run([HOSTS, "shape", link])
                bw = parse_bandwidth(run(mpirun_across(work, 1, "self,tcp",
                                                       [os.path.join(args.build, "bench/allreduce_bandwidth"),
                                                        "--mpi-only"] + [str(s) for s in SIZES])))
                alpha, beta = fit_alpha_beta(bw, 2)
                entry = {"allreduce": bw, "alpha_s": alpha, "beta_bytes_per_s": beta, "runs": []}
                wires = ("fp32", "bf16") if link == "1gbit" else ("fp32",)
                for wire in wires:
                    for name, (net, kind) in NETS.items():
                        for per_host in (1, 2):
                            m = train_repeated(args, work, net, data[kind], per_host, 1, wire,
                                               f"{link}-{name}-{per_host}-{wire}")
                            entry["runs"].append({"net": name, "ranks_per_host": per_host, "bucket_mb": 1,
                                                  "wire": wire, **m})
                if link == "1gbit":
                    for mb in args.buckets.split(","):
                        if float(mb) == 1:
                            continue
                        m = train_repeated(args, work, NETS["lenet"][0], data["fashion"], 1, float(mb), "fp32",
                                           f"{link}-lenet-1-b{mb}")
                        entry["runs"].append({"net": "lenet", "ranks_per_host": 1, "bucket_mb": float(mb),
                                              "wire": "fp32", **m})
                results["links"][link] = entry
                print_link(link, entry)
        finally:
            subprocess.run([HOSTS, "down"], check=False)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"written to {args.out}; model check: bench/scaling_model.py --check {args.out}")


def print_link(link, entry):
    rate = "unlimited" if link == "none" else link
    mb1 = entry["allreduce"][1048576]
    print(f"link {rate}: alpha {entry['alpha_s'] * 1e6:.0f} us, beta {entry['beta_bytes_per_s'] / 1e9:.3f} GB/s; "
          f"1 MiB all-reduce: bare MPI {mb1['bare_gbs']:.3f} GB/s, convoy {mb1['convoy_gbs']:.3f} GB/s "
          f"({mb1['convoy_gbs'] / mb1['bare_gbs']:.2f})")
    print(f"  {'net':9} {'ranks':5} {'bucket MB':>9} {'wire':4} {'step ms':>8} {'compute':>8} {'exposed':>8}"
          f" {'buckets':>7}  repeats' step ms")
    for r in entry["runs"]:
        print(f"  {r['net']:9} {r['ranks_per_host']}+{r['ranks_per_host']:<3} {r['bucket_mb']:9.2f} {r['wire']:4} "
              f"{r['step_ms']:8.1f} {r['compute_ms']:8.1f} {r['comm_exposed_ms']:8.1f} {r['buckets']!s:>7}  "
              + " ".join(f"{t:.1f}" for t in r["step_ms_runs"]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
