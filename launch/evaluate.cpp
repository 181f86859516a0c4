#include "launch/evaluate.h"

#include "io/prefetcher.h"

namespace convoy {

StatusOr<EvalResult> Evaluate(Net& net, const Dataset& data, int batch, int max_batches,
                              const std::vector<float>& mean, const std::vector<float>& std,
                              Communicator* comm) {
  const int train_batch = net.batch();
  PrefetchOptions options;
  options.batch = batch;
  options.shuffle = false;
  options.single_pass = true;
  options.mean = mean;
  options.std = std;
  options.rank = comm->rank();
  options.world_size = comm->size();
  Prefetcher prefetcher(data, options);
  EvalResult result;
  double loss_sum = 0, correct = 0;
  int batches = 0;
  while (const Batch* b = prefetcher.Next()) {
    if (max_batches > 0 && batches++ >= max_batches) {
      prefetcher.Release(b);
      break;
    }
    (void)net.SetBatch(b->size);  // shapes were checked at Build; a batch change cannot fail
    net.backend()->CopyFromHost(b->images.data(), net.images()->data.count(), net.images()->data.mutable_data());
    net.backend()->CopyFromHost(b->labels.data(), b->size, net.labels()->data.mutable_data());
    net.Forward(net.Context(false, 0, 0));
    loss_sum += double{net.ReadScalar(net.loss_blob())} * b->size;
    for (const std::string& out : net.scalar_outputs())
      if (out != net.loss_blob()) {
        correct += double{net.ReadScalar(out)} * b->size;
        break;  // the first metric after the loss is the accuracy reported
      }
    result.samples += b->size;
    prefetcher.Release(b);
  }
  (void)net.SetBatch(train_batch);
  // Sums in float are exact here: sample counts and correct counts stay far below 2^24.
  std::vector<float> sums = {static_cast<float>(loss_sum), static_cast<float>(correct),
                             static_cast<float>(result.samples)};
  RETURN_IF_ERROR(comm->Allreduce(sums.data(), 3));
  result.samples = static_cast<int64_t>(sums[2]);
  if (result.samples > 0) {
    result.loss = sums[0] / result.samples;
    result.accuracy = sums[1] / result.samples;
  }
  return result;
}

Status CheckDatasetFitsNet(const Dataset& data, const Net& net) {
  const auto& m = data.manifest();
  const Shape expected = net.data_layer().image_shape();
  const Shape found = {m.channels(), m.height(), m.width()};
  if (expected != found)
    return InvalidInput("layer '" + net.data_layer().name() + "' (Data) expects images of " +
                        ShapeString(expected) + " (data_param) but the dataset " + data.dir() +
                        "/manifest.prototxt has " + ShapeString(found) +
                        "; change data_param or convert the data to that shape");
  if (net.num_outputs() != m.num_classes())
    return InvalidInput("the net's loss sees " + std::to_string(net.num_outputs()) +
                        " scores per sample but the dataset " + data.dir() + " has " +
                        std::to_string(m.num_classes()) +
                        " classes; set num_output of the last layer to " +
                        std::to_string(m.num_classes()));
  return Status::Ok();
}

}  // namespace convoy
