// The layer registry: type name -> factory. A layer's .cpp registers itself with
// CONVOY_REGISTER_LAYER(TypeName, Class); an unknown name's error lists every known type. The
// layers' archive is linked whole (core/CMakeLists.txt), so a registration is never dropped.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/layer.h"

namespace convoy {

using LayerFactory = std::function<std::unique_ptr<Layer>(const proto::LayerSpec&)>;

class LayerRegistry {
 public:
  static LayerRegistry& Global();
  bool Add(const std::string& type, LayerFactory factory);
  StatusOr<std::unique_ptr<Layer>> Create(const proto::LayerSpec& spec) const;
  std::string KnownTypes() const;  // "Accuracy, Convolution, ..."

 private:
  std::map<std::string, LayerFactory> factories_;
};

}  // namespace convoy

#define CONVOY_REGISTER_LAYER(type, cls)                                                                            \
  namespace convoy {                                                                                                \
  static const bool kRegistered##cls =                                                                              \
      LayerRegistry::Global().Add(#type, [](const proto::LayerSpec& spec) { return std::make_unique<cls>(spec); }); \
  }
