// Photos in and out: JPEG through libjpeg-turbo, PNG through libpng. Decoding gives 8-bit RGB
// whatever the file holds (greyscale is repeated, alpha is composited onto white, palettes and
// 16-bit samples are expanded and reduced). Every failure is a Status naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace convoy {

// An 8-bit image, rows top to bottom, channels interleaved (RGBRGB... for 3).
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height x width x channels
};

// Decodes a JPEG or PNG held in memory (the format is read from its first bytes) to RGB.
// `name` is only for messages. min_side > 0 says the caller will shrink the image until its
// shorter side is min_side: a large JPEG is then decoded at 1/2, 1/4 or 1/8 scale by libjpeg's
// DCT scaling, to no less than twice min_side, so the resampler still averages (much faster).
StatusOr<Image> DecodeImage(const std::string& bytes, const std::string& name, int min_side = 0);
// The same into *out, whose buffer is reused (the prefetch threads decode a photo per sample).
Status DecodeImage(const uint8_t* bytes, size_t size, const std::string& name, Image* out, int min_side = 0);
// Reads and decodes the file at path.
StatusOr<Image> ReadImage(const std::string& path, int min_side = 0);

// Writers (tests make photos with them; channels 1 or 3 for JPEG, 1 to 4 for PNG).
StatusOr<std::string> EncodeJpeg(const Image& image, int quality = 90, const std::string& name = "image");
Status WriteJpeg(const std::string& path, const Image& image, int quality = 90);
Status WritePng(const std::string& path, const Image& image);

}  // namespace convoy
