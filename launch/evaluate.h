// Evaluation: the net in test mode over a dataset, in order, every sample once (the last batch
// may be partial). Loss and accuracy are means over samples.
#pragma once

#include "core/net.h"
#include "io/dataset.h"

namespace convoy {

struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  int64_t samples = 0;
};

// max_batches 0: the whole dataset. mean/std: the training set's normalisation. Restores the
// net's batch size afterwards.
EvalResult Evaluate(Net& net, const Dataset& data, int batch, int max_batches,
                    const std::vector<float>& mean, const std::vector<float>& std);

// Checks that a dataset fits the net: image shape against the Data layer, classes against the
// scores the loss sees. Errors name the layer, the manifest and both shapes.
Status CheckDatasetFitsNet(const Dataset& data, const Net& net);

}  // namespace convoy
