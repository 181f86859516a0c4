#!/usr/bin/env python3
"""Reads a convoy checkpoint without convoy, protobuf or numpy: the layout, in the README's
"Checkpoint files", is 8 bytes "CONVOYCK", then records (a little-endian uint64 length, then that
many bytes of protobuf): one Checkpoint whose tensors' values are left out, the values as
ParamChunks, and a CheckpointFooter whose FNV-1a 64 covers every byte before it. The few
protobuf fields needed are decoded here by hand (core/proto/convoy.proto has their numbers).

As a library:  ckpt = read_checkpoint("run/checkpoints/ckpt-4685.pb")
               ckpt["params"]["conv1/0"] -> (shape tuple, array('f') of values)
As a program:  launch/read_checkpoint.py CKPT [--no-verify]   (prints what `convoy inspect` does)
"""
import array
import math
import struct
import sys

MAGIC = b"CONVOYCK"
FNV_OFFSET, FNV_PRIME, MASK = 1469598103934665603, 1099511628211, (1 << 64) - 1


class CheckpointError(Exception):
    pass


def fnv1a64(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def varint(buf, at):
    value = shift = 0
    while True:
        if at >= len(buf):
            raise CheckpointError("a protobuf varint runs past its record")
        b = buf[at]
        value |= (b & 0x7F) << shift
        at += 1
        if b < 0x80:
            return value, at
        shift += 7


def fields(buf):
    """(field number, value) of a protobuf message: ints for varints and fixed ones, bytes for
    length-delimited fields."""
    at = 0
    while at < len(buf):
        key, at = varint(buf, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(buf, at)
        elif wire == 1:
            value, at = struct.unpack_from("<Q", buf, at)[0], at + 8
        elif wire == 2:
            size, at = varint(buf, at)
            value, at = bytes(buf[at:at + size]), at + size
        elif wire == 5:
            value, at = struct.unpack_from("<I", buf, at)[0], at + 4
        else:
            raise CheckpointError(f"unknown protobuf wire type {wire}")
        yield number, value


def param_blob(buf):
    name, shape, data = "", [], b""
    for number, value in fields(buf):
        if number == 1:
            name = value.decode()
        elif number == 2:  # repeated int64: one varint each, or packed
            if isinstance(value, bytes):
                at = 0
                while at < len(value):
                    d, at = varint(value, at)
                    shape.append(d)
            else:
                shape.append(value)
        elif number == 3:
            data = value
    return name, tuple(shape), data


def read_checkpoint(path, verify=True):
    """A dict: version, net, iteration, world_size, class_names, params (name -> (shape, values)),
    momentum (name -> (shape, values)); values are array('f'). Raises CheckpointError."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:8] != MAGIC:
        raise CheckpointError(f"{path}: not a convoy checkpoint (it does not start with CONVOYCK)")
    records, at = [], 8
    while at < len(blob):
        if at + 8 > len(blob):
            raise CheckpointError(f"{path}: truncated")
        (size,) = struct.unpack_from("<Q", blob, at)
        if at + 8 + size > len(blob):
            raise CheckpointError(f"{path}: truncated in the middle of a record")
        records.append((at, blob[at + 8:at + 8 + size]))
        at += 8 + size
    if len(records) < 2:
        raise CheckpointError(f"{path}: truncated (no footer)")
    footer_at, footer = records.pop()
    footer_fields = dict(fields(footer))
    if footer_fields.get(1) != len(records):
        raise CheckpointError(f"{path}: the footer counts {footer_fields.get(1)} records, the file has {len(records)}")
    if verify and fnv1a64(blob[:footer_at]) != footer_fields.get(2):
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint is damaged")

    ckpt = {"version": "", "net": "", "iteration": 0, "world_size": 0, "class_names": []}
    tensors, momentum_names = [], []  # in file order: parameters, momentum, second moment
    for number, value in fields(records[0][1]):
        if number == 1:
            ckpt["version"] = value.decode()
        elif number == 2:
            ckpt["net"] = next((v.decode() for n, v in fields(value) if n == 1), "")
        elif number == 4:
            tensors.append(("param",) + param_blob(value)[:2])
        elif number == 5:
            for n, v in fields(value):
                if n == 1:
                    ckpt["iteration"] = v
                elif n in (2, 4):
                    tensors.append(("momentum" if n == 2 else "second_moment",) + param_blob(v)[:2])
        elif number == 6:
            ckpt["world_size"] = value
        elif number == 13:
            ckpt["class_names"].append(value.decode())
    # Field order in the header is not the file order of the values: parameters come first.
    order = {"param": 0, "momentum": 1, "second_moment": 2}
    tensors.sort(key=lambda t: order[t[0]])  # stable: each kind keeps its own order
    values = [array.array("f") for _ in tensors]
    for _, record in records[1:]:
        chunk = dict(fields(record))
        t, offset, data = chunk.get(1, 0), chunk.get(2, 0), chunk.get(3, b"")
        if t >= len(values) or offset != len(values[t]):
            raise CheckpointError(f"{path}: a tensor chunk is out of place")
        values[t].frombytes(data)
    if sys.byteorder != "little":
        for v in values:
            v.byteswap()
    for kind in ("params", "momentum", "second_moment"):
        ckpt[kind] = {}
    for (kind, name, shape), v in zip(tensors, values):
        if len(v) != math.prod(shape):
            raise CheckpointError(f"{path}: {name} holds {len(v)} values for shape {shape}")
        ckpt["params" if kind == "param" else kind][name] = (shape, v)
    return ckpt


def norm(values):
    return math.sqrt(math.fsum(float(x) * float(x) for x in values))


def main():
    args = [a for a in sys.argv[1:] if a != "--no-verify"]
    if len(args) != 1:
        sys.exit("usage: read_checkpoint.py CKPT [--no-verify]")
    try:
        ckpt = read_checkpoint(args[0], verify="--no-verify" not in sys.argv)
    except (CheckpointError, OSError) as e:
        print(f"read_checkpoint: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"checkpoint {args[0]}: net '{ckpt['net']}', iteration {ckpt['iteration']}, "
          f"convoy {ckpt['version']}, {ckpt['world_size']} rank(s)")
    momentum = list(ckpt["momentum"].values())
    for i, (name, (shape, values)) in enumerate(ckpt["params"].items()):
        m = norm(momentum[i][1]) if i < len(momentum) else 0.0
        print(f"  {name:<16} {'x'.join(map(str, shape)):<16} {norm(values):14.9g} {m:14.9g}")


if __name__ == "__main__":
    main()
