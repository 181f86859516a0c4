// Data: the net's input. It has no bottoms; the trainer copies each batch into its two tops,
// images (N x C x H x W, normalised) and labels (N, class indices as floats).
#pragma once

#include "core/layer.h"

namespace convoy {

class DataLayer final : public Layer {
 public:
  using Layer::Layer;
  int NumBottoms() const override { return 0; }
  int NumTops() const override { return 2; }
  bool HasBackward() const override { return false; }

  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext&, const std::vector<Blob*>&, const std::vector<Blob*>&) override {}
  void Backward(const StepContext&, const std::vector<Blob*>&, const std::vector<bool>&,
                const std::vector<Blob*>&) override {}

  void set_batch(int batch) { batch_ = batch; }
  // The image shape the net expects, C x H x W.
  Shape image_shape() const;

 private:
  int batch_ = 1;
};

}  // namespace convoy
