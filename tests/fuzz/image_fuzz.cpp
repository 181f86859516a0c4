// Fuzz target: photo bytes -> DecodeImage (JPEG or PNG) -> a resize to 16 x 16, as convert does.
#include <vector>

#include "io/image_codec.h"
#include "io/image_resize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto image = convoy::DecodeImage(std::string(reinterpret_cast<const char*>(data), size), "fuzz", 16);
  if (!image.ok()) return 0;
  std::vector<uint8_t> out(16 * 16 * static_cast<size_t>(image->channels));
  convoy::ResizeAndCenterCrop(*image, 16, 16, out.data());
  return 0;
}
