// Evaluation: the net in test mode over a dataset, every sample once: rank r of W takes samples
// r, r + W, ... (the last batch may be partial), and the sums are added up across ranks. Loss
// and accuracy are means over samples.
#pragma once

#include "core/net.h"
#include "distributed/communicator.h"
#include "io/dataset.h"

namespace convoy {

struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  int64_t samples = 0;
  // classes x classes counts: row = true class, column = the top-scoring class.
  int classes = 0;
  std::vector<int64_t> confusion;
};

// Per-class accuracy as a table, then the confusion matrix (up to 20 classes), with the class
// names where the dataset has them.
std::string FormatPerClass(const EvalResult& r, const std::vector<std::string>& class_names);

// max_batches 0: the whole dataset. mean/std: the training set's normalisation. Images larger
// than the net's input are scaled and centre-cropped (data_param.test_crop_fraction). Restores
// the net's batch size afterwards.
StatusOr<EvalResult> Evaluate(Net& net, const Dataset& data, int batch, int max_batches, const std::vector<float>& mean,
                              const std::vector<float>& std, Communicator* comm, int data_threads = 1);

// Checks that a dataset fits the net: image shape against the Data layer, classes against the
// scores the loss sees. Errors name the layer, the manifest and both shapes.
Status CheckDatasetFitsNet(const Dataset& data, const Net& net);

}  // namespace convoy
