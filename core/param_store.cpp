#include "core/param_store.h"

#include <cmath>

#include "core/random.h"

namespace convoy {

void ParamStore::Add(ParamEntry entry) {
  entry.offset = total_;
  total_ += entry.count();
  entries_.push_back(std::move(entry));
}

void ParamStore::Allocate(Backend* backend, uint64_t seed) {
  values_ = Tensor(backend, {total_});
  grads_ = Tensor(backend, {total_});
  backend->Fill(total_, 0.f, grads_.mutable_data());
  for (size_t i = 0; i < entries_.size(); ++i) value(i).FromHost(FillValues(entries_[i].decl, seed, i));
}

std::vector<float> FillValues(const ParamDecl& decl, uint64_t seed, uint64_t stream) {
  const proto::FillerSpec& f = decl.filler;
  std::vector<float> v(ShapeCount(decl.shape));
  const float fan_in = static_cast<float>(std::max(decl.fan_in, 1));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (f.type()) {
      case proto::FillerSpec::CONSTANT:
        v[i] = f.value();
        break;
      case proto::FillerSpec::GAUSSIAN:
        v[i] = f.std() * RandomNormal(seed, stream, i);
        break;
      case proto::FillerSpec::UNIFORM:
        v[i] = f.min() + (f.max() - f.min()) * RandomUniform(seed, stream, i);
        break;
      case proto::FillerSpec::XAVIER: {
        const float scale = std::sqrt(3.f / fan_in);
        v[i] = scale * (2.f * RandomUniform(seed, stream, i) - 1.f);
        break;
      }
      case proto::FillerSpec::MSRA:
        v[i] = std::sqrt(2.f / fan_in) * RandomNormal(seed, stream, i);
        break;
    }
  }
  return v;
}

}  // namespace convoy
