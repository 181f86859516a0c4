"""Runs an ONNX model in ONNX Runtime on raw pixels and compares its probabilities with convoy's.
usage: run_onnx.py MODEL PIXELS EXPECTED N C H W
PIXELS: N*C*H*W float32 (0-255); EXPECTED: convoy's probabilities, N*K float32. Prints the
largest absolute difference and each row's agreement on the top class."""
import sys

import numpy as np
import onnxruntime

model, pixels_path, expected_path = sys.argv[1:4]
n, c, h, w = map(int, sys.argv[4:8])
pixels = np.fromfile(pixels_path, dtype="<f4").reshape(n, c, h, w)
expected = np.fromfile(expected_path, dtype="<f4").reshape(n, -1)
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
(got,) = session.run(None, {session.get_inputs()[0].name: pixels})
assert got.shape == expected.shape, (got.shape, expected.shape)
print(f"max abs difference {np.abs(got - expected).max():.3g}")
print(f"top-1 agreement {int((got.argmax(1) == expected.argmax(1)).sum())} of {n}")
print(f"input {session.get_inputs()[0].name} output {session.get_outputs()[0].name}")
