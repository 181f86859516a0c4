#include "core/layer_registry.h"

namespace convoy {

LayerRegistry& LayerRegistry::Global() {
  static LayerRegistry registry;
  return registry;
}

bool LayerRegistry::Add(const std::string& type, LayerFactory factory) {
  factories_[type] = std::move(factory);
  return true;
}

StatusOr<std::unique_ptr<Layer>> LayerRegistry::Create(const proto::LayerSpec& spec) const {
  auto it = factories_.find(spec.type());
  if (it == factories_.end())
    return InvalidInput("layer '" + spec.name() + "': unknown type '" + spec.type() +
                        "'; known types: " + KnownTypes());
  return it->second(spec);
}

std::string LayerRegistry::KnownTypes() const {
  std::string out;
  for (const auto& [type, factory] : factories_) out += (out.empty() ? "" : ", ") + type;
  return out;
}

#define CONVOY_LAYER_LIST(X) \
  X(DataLayer) X(ConvolutionLayer) X(PoolingLayer) X(InnerProductLayer) X(ReluLayer) \
  X(DropoutLayer) X(FlattenLayer) X(SoftmaxWithLossLayer) X(AccuracyLayer) X(BatchNormLayer) \
  X(EltwiseLayer) X(ConcatLayer)
#define CONVOY_DECLARE_LINK(cls) void Link##cls();
CONVOY_LAYER_LIST(CONVOY_DECLARE_LINK)
#define CONVOY_CALL_LINK(cls) Link##cls();
void LinkAllLayers() { CONVOY_LAYER_LIST(CONVOY_CALL_LINK) }

}  // namespace convoy
