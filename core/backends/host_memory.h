// Memory operations shared by the backends whose device is host memory (cpu and reference).
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/backend.h"

namespace convoy {

class HostMemoryBackend : public Backend {
 public:
  Device device() const override { return Device::kCpu; }
  int64_t memory_bytes() const override {
    static const int64_t bytes = int64_t{sysconf(_SC_PHYS_PAGES)} * sysconf(_SC_PAGESIZE);
    return bytes;
  }
  float* Allocate(int64_t count) override {
    // 64-byte alignment for AVX-512 loads; rounded up as aligned_alloc requires.
    const size_t bytes = ((static_cast<size_t>(count) * sizeof(float) + 63) / 64) * 64;
    void* ptr = std::aligned_alloc(64, bytes);
    if (!ptr) throw std::bad_alloc();
    return static_cast<float*>(ptr);
  }
  void Free(float* ptr) override { std::free(ptr); }
  void CopyFromHost(const float* host, int64_t count, float* dst) override {
    std::memcpy(dst, host, count * sizeof(float));
  }
  void CopyToHost(const float* src, int64_t count, float* host) override {
    std::memcpy(host, src, count * sizeof(float));
  }
  void Copy(const float* src, int64_t count, float* dst) override {
    if (src != dst) std::memmove(dst, src, count * sizeof(float));
  }
  void AnyNonFinite(int64_t count, const float* x, float* found) override {
    bool any = false;
    for (int64_t i = 0; i < count; ++i) any |= !std::isfinite(x[i]);
    found[0] = any ? 1.f : 0.f;
  }

 protected:
  // s with this backend's precision written in; TF32 computes fp32 on a host.
  ConvShape WithPrecision(const ConvShape& s) const {
    ConvShape tagged = s;
    tagged.precision = precision_ == Precision::kTf32 ? Precision::kFloat32 : precision_;
    return tagged;
  }
};

}  // namespace convoy
