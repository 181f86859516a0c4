// convoy export --format onnx: a checkpoint as an ONNX model (opset 13) for inference engines
// (ONNX Runtime, TensorRT, OpenVINO). Raw pixels go in, as `convoy predict` takes them: input
// "pixels", float 0-255, N x C x H x W with N free; the training set's normalisation is the
// first two nodes (Sub, Div); class probabilities come out ("probabilities", N x classes).
// Each layer maps to ONNX operators: Convolution to Conv, Pooling to MaxPool/AveragePool (Caffe's
// rounded-up output as explicit end padding) or their Global forms, InnerProduct to Flatten +
// Gemm, BatchNorm to BatchNormalization with the running statistics, ReLU to Relu/LeakyRelu,
// Eltwise to Mul and Add, Concat, Flatten; Dropout is left out, Accuracy dropped, and
// SoftmaxWithLoss becomes Softmax. A layer with no exact ONNX form is refused by name.
#pragma once

#include <string>

#include "core/proto/convoy.pb.h"
#include "core/status.h"

namespace convoy {

struct OnnxExport {
  std::string model;    // the serialised ModelProto
  std::string summary;  // "N nodes, M initializers, K parameters", for the command's line
};

StatusOr<OnnxExport> ExportOnnx(const proto::Checkpoint& ckpt);

}  // namespace convoy
