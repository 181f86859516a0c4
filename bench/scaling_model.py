#!/usr/bin/env python3
"""A model of convoy's data-parallel step: step time, exposed communication and scaling efficiency
for N nodes x G ranks, from a net's per-layer times and parameters (`convoy time --json`), its
gradient bucket layout, and an alpha-beta model of the links.

The step, as convoy runs it (distributed/gradient_buckets.h): forward; backward from the last
layer to the first, each bucket's all-reduce starting once its lowest layer has its gradients;
the all-reduces one after another on the rank's communication thread (or NCCL stream); the
update once the last has finished. So

    step = forward + backward + exposed + update,
    exposed = max(0, end of the last all-reduce - end of backward).

An all-reduce of n bytes over p ranks joined by links of alpha seconds per message and beta
bytes/s per direction takes (Thakur et al. 2005; Patarasuk and Yuan 2009):
    ring:  2(p-1) alpha + 2 (p-1)/p n / beta
    tree:  2 ceil(log2 p) alpha + 2 n / beta      (pipelined double binary tree, as NCCL's)
and convoy's hierarchical path (README: Data-parallel training) first sums inside each node
(ring over the node's G ranks on the intra-node link), then all-reduces across the N nodes, where
the G ranks each carry 1/G of the bucket through the node's one network link, i.e. n bytes in all.

Usage:
  bench/scaling_model.py --check bench/results/link_scaling.json   # model against measurements
  bench/scaling_model.py --predict                                  # the GPU cluster table
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOAT_BYTES = 4


@dataclass(frozen=True)
class Link:
    alpha: float  # seconds per message
    beta: float   # bytes per second, each direction


def ring_allreduce_s(nbytes, p, link):
    if p <= 1 or nbytes <= 0:
        return 0.0
    return 2 * (p - 1) * link.alpha + 2 * (p - 1) / p * nbytes / link.beta


def tree_allreduce_s(nbytes, p, link):
    if p <= 1 or nbytes <= 0:
        return 0.0
    return 2 * math.ceil(math.log2(p)) * link.alpha + 2 * nbytes / link.beta


ALGORITHMS = {"ring": ring_allreduce_s, "tree": tree_allreduce_s}


def hierarchical_allreduce_s(nbytes, nodes, per_node, inter, intra, across="ring"):
    """Sum inside each node, then across nodes (each rank 1/G of it, n bytes through the node's link)."""
    inside = ring_allreduce_s(nbytes, per_node, intra)
    between = ALGORITHMS[across](nbytes, nodes, inter)
    return inside + between


def bucket_layout(layers, bucket_bytes):
    """convoy's GradientBuckets: layers walked last to first, a bucket closed once it holds at
    least bucket_bytes (a layer's parameters never split). Returns [(bytes, lowest layer index)]."""
    buckets, size, lowest = [], 0, None
    for i in range(len(layers) - 1, -1, -1):
        floats = layers[i]["param_floats"]
        if floats == 0:
            continue
        size += floats * FLOAT_BYTES
        lowest = i
        if size >= bucket_bytes:
            buckets.append((size, lowest))
            size, lowest = 0, None
    if lowest is not None:
        buckets.append((size, lowest))
    return buckets


def simulate_step(timing, bucket_bytes, allreduce_s, steal_s=None):
    """Milliseconds of a step: the timing's per-layer forward/backward (scaled so that with the
    update they add up to its whole-step time), buckets of bucket_bytes, allreduce_s(bytes) each.

    steal_s(bytes): on CPU ranks with no spare core, the processor time an all-reduce takes from
    the computation (the TCP stack, copies and sums run on the same cores): added to backward."""
    layers = timing["layers"]
    fwd = [l["forward_ms"] for l in layers]
    bwd = [l["backward_ms"] for l in layers]
    measured = sum(fwd) + sum(bwd) + timing["update_ms"]
    scale = timing["step_ms"] / measured if timing.get("step_ms") else 1.0
    fwd = [f * scale for f in fwd]
    bwd = [b * scale for b in bwd]
    # When each layer's backward ends, from the start of backward.
    done, t = [0.0] * len(layers), 0.0
    for i in range(len(layers) - 1, -1, -1):
        t += bwd[i]
        done[i] = t
    comm_end, stolen = 0.0, 0.0
    for nbytes, lowest in bucket_layout(layers, bucket_bytes):
        comm_end = max(done[lowest] + stolen, comm_end) + allreduce_s(nbytes) * 1e3
        if steal_s:
            stolen += steal_s(nbytes) * 1e3
    backward = sum(bwd) + stolen
    exposed = max(0.0, comm_end - backward)
    compute = sum(fwd) + backward + timing["update_ms"] * scale
    return {"step_ms": compute + exposed, "compute_ms": compute, "exposed_ms": exposed, "stolen_ms": stolen,
            "comm_ms": comm_end if comm_end else 0.0}


def efficiency(timing, bucket_bytes, allreduce_s):
    """Per-rank throughput at scale against one rank alone (which communicates nothing)."""
    alone = simulate_step(timing, bucket_bytes, lambda n: 0.0)["step_ms"]
    return alone / simulate_step(timing, bucket_bytes, allreduce_s)["step_ms"]


# ---- the model against bench/link_scaling.py's measurements ----

def fit_link(rows, ranks, seconds_key):
    """alpha, beta of a ring all-reduce over `ranks` from {bytes: {seconds_key: s}} (least squares)."""
    p = ranks
    xs = [2 * (p - 1) / p * int(n) for n in rows]
    ts = [rows[n][seconds_key] for n in rows]
    mx, mt = statistics.mean(xs), statistics.mean(ts)
    slope = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sum((x - mx) ** 2 for x in xs)
    return Link(alpha=max((mt - slope * mx) / (2 * (p - 1)), 0.0), beta=1.0 / slope)


def link_of(entry):
    """A shaped link's alpha and beta, from the all-reduces measured across it: at each size the
    mean of the bare MPI_Allreduce and convoy's path, which meet the same link (a shaped TCP link's
    1 MiB all-reduce takes 8.8 or 14.7 ms, whichever its protocol falls into, on either path)."""
    rows = {n: {"s": (r["bare_s"] + int(n) / (r["convoy_gbs"] * 1e9)) / 2} for n, r in entry["allreduce"].items()}
    return fit_link(rows, 2, "s")


def shared_memory_link(calibration):
    rows = {n: {"s": int(n) / (r["shared_gbs"] * 1e9)} for n, r in calibration["shared_memory"].items()}
    return fit_link(rows, 2, "s")


def check(path):
    results = json.load(open(path))
    intra = shared_memory_link(results["calibration"])
    print(f"intra-node (shared memory, 2 ranks): alpha {intra.alpha * 1e6:.1f} us, beta {intra.beta / 1e9:.2f} GB/s")
    # The processor cost of moving a byte through MPI's TCP path: its rate on the unlimited link,
    # where nothing but the processors limits it. Every rank here shares the machine's cores.
    cpu = link_of(results["links"]["none"]) if "none" in results["links"] else None
    if cpu:
        print(f"processor cost of the TCP path: {1e9 / cpu.beta:.2f} s per GB (the unlimited link's rate)")
    print(f"{'link':9} {'net':9} {'ranks':5} {'bucket MB':>9} {'wire':4} {'measured ms':>11} {'predicted':>9} {'error':>7}"
          f" {'exposed meas.':>13} {'exposed pred.':>13}")
    errors = []
    for link_name, entry in results["links"].items():
        inter = link_of(entry)
        print(f"link {link_name}: alpha {inter.alpha * 1e6:.0f} us, beta {inter.beta / 1e9:.3f} GB/s")
        for r in entry["runs"]:
            g = r["ranks_per_host"]
            timing = results["calibration"][r["net"]][str(2 * g)]
            # gradient_wire BF16 halves the bytes that cross the link (the node's sum stays fp32).
            across = 0.5 if r.get("wire") == "bf16" else 1.0
            allreduce = lambda n: ring_allreduce_s(n, g, intra) + ring_allreduce_s(n * across, 2, inter)  # noqa: E731
            # Each rank carries 1/G of a bucket across the link, and sums inside the node.
            steal = (lambda n: ring_allreduce_s(n * across / g, 2, Link(0, cpu.beta)) +  # noqa: E731
                     ring_allreduce_s(n, g, intra)) if cpu else None
            p = simulate_step(timing, r["bucket_mb"] * (1 << 20), allreduce, steal)
            err = (p["step_ms"] - r["step_ms"]) / r["step_ms"]
            errors.append(abs(err))
            rate = "unlimited" if link_name == "none" else link_name
            print(f"{rate:9} {r['net']:9} {g}+{g:<3} {r['bucket_mb']:9.2f} {r.get('wire', 'fp32'):4} "
                  f"{r['step_ms']:11.1f} {p['step_ms']:9.1f}"
                  f" {err * 100:+6.0f}% {r['comm_exposed_ms']:13.1f} {p['exposed_ms']:13.1f}")
    print(f"median |error| {statistics.median(errors) * 100:.0f}%, largest {max(errors) * 100:.0f}%, "
          f"{sum(e <= 0.15 for e in errors)} of {len(errors)} rows within 15%")
    return errors


# ---- predictions for GPU clusters ----

# Assumptions, stated in the README beside the table (no GPU run of these nets exists yet):
H100_IMAGES_PER_S = {"resnet50": 2800.0, "resnet20": 20000.0}  # per GPU, mixed precision, data on the GPU
BATCH_PER_GPU = {"resnet50": 64, "resnet20": 128}
NVLINK = Link(alpha=5e-6, beta=150e9)  # per direction per GPU in a ring over NVSwitch (busbw ~ 300 GB/s)
IB_ALPHA = 10e-6                        # per message across nodes, NCCL's protocol included
GPUS_PER_NODE = 8
NET_CONFIGS = {"resnet50": "configs/resnet50_photos.prototxt", "resnet20": "configs/resnet20_cifar.prototxt"}


def gpu_timing(build, net):
    """The net's layers and relative per-layer times (from `convoy time` on the CPU, batch 2),
    scaled to the assumed GPU step time."""
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "t.json")
        subprocess.run([os.path.join(build, "convoy"), "time", "--net", os.path.join(ROOT, NET_CONFIGS[net]),
                        "--batch", "2", "--iters", "2", "--json", path], check=True, capture_output=True)
        timing = json.load(open(path))
    timing["step_ms"] = BATCH_PER_GPU[net] / H100_IMAGES_PER_S[net] * 1e3
    timing["update_ms"] = 0.0
    return timing


def predict(build, bucket_mbs):
    rows = []
    for net in ("resnet50", "resnet20"):
        timing = gpu_timing(build, net)
        params = sum(l["param_floats"] for l in timing["layers"])
        for gbit in (100, 200, 400):
            inter = Link(alpha=IB_ALPHA, beta=gbit / 8 * 1e9)
            for gpus in (8, 64, 512):
                nodes = max(1, gpus // GPUS_PER_NODE)
                for bucket_mb in bucket_mbs:
                    for across in ("ring", "tree"):
                        f = lambda n: hierarchical_allreduce_s(n, nodes, GPUS_PER_NODE, inter, NVLINK, across)  # noqa
                        s = simulate_step(timing, bucket_mb * (1 << 20), f)
                        rows.append({"net": net, "params": params, "gbit": gbit, "gpus": gpus, "bucket_mb": bucket_mb,
                                     "across": across, "step_ms": s["step_ms"], "exposed_ms": s["exposed_ms"],
                                     "efficiency": efficiency(timing, bucket_mb * (1 << 20), f)})
    return rows


def print_predictions(rows):
    print("assumed: H100 " + ", ".join(f"{n} {H100_IMAGES_PER_S[n]:.0f} images/s at batch {BATCH_PER_GPU[n]}/GPU"
                                       for n in H100_IMAGES_PER_S) +
          f"; 8 GPUs per node on NVSwitch (alpha {NVLINK.alpha * 1e6:.0f} us, {NVLINK.beta / 1e9:.0f} GB/s); "
          f"one InfiniBand link per node, alpha {IB_ALPHA * 1e6:.0f} us; fp32 gradients")
    print(f"{'net':9} {'IB':>8} {'bucket MB':>9} {'across':6} " +
          " ".join(f"{g:>4} GPUs eff. (exposed ms)" for g in (8, 64, 512)))
    keys = sorted({(r["net"], r["gbit"], r["bucket_mb"], r["across"]) for r in rows},
                  key=lambda k: (k[0] != "resnet50", k[1], k[2], k[3]))
    for net, gbit, mb, across in keys:
        cells = []
        for gpus in (8, 64, 512):
            r = next(r for r in rows if (r["net"], r["gbit"], r["bucket_mb"], r["across"], r["gpus"]) ==
                     (net, gbit, mb, across, gpus))
            cells.append(f"{r['efficiency'] * 100:5.1f} % ({r['exposed_ms']:6.1f})".rjust(25))
        print(f"{net:9} {gbit:>4}Gbit {mb:9.2f} {across:6} " + " ".join(cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="RESULTS", help="bench/link_scaling.py's JSON")
    ap.add_argument("--predict", action="store_true")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--buckets", default="1,25", help="bucket_mb values for --predict")
    args = ap.parse_args()
    if not args.check and not args.predict:
        ap.error("give --check RESULTS and/or --predict")
    if args.check:
        check(args.check)
    if args.predict:
        print_predictions(predict(args.build, [float(b) for b in args.buckets.split(",")]))


if __name__ == "__main__":
    sys.exit(main())
