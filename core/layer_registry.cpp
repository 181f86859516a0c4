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

}  // namespace convoy
