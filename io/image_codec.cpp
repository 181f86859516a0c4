#include "io/image_codec.h"

// jpeglib.h needs FILE and size_t declared before it.
#include <jpeglib.h>

// The message codes, to tell a truncated photo from a harmless warning.
#include <jerror.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/text_format.h"

namespace convoy {
namespace {

// libjpeg reports errors by calling error_exit, which by default ends the process: ours jumps
// back to the caller with the library's message instead.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr info) {
  auto* err = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}
// Warnings such as extraneous bytes between markers are common in real photos and harmless; a
// photo whose data ends early (libjpeg pads it with grey) or is cut by a marker is damaged, and
// is remembered so the decode fails instead of storing the grey.
void JpegWarning(j_common_ptr info, int level) {
  if (level >= 0) return;  // trace messages
  const int code = info->err->msg_code;
  auto* err = reinterpret_cast<JpegError*>(info->err);
  if ((code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) && err->message[0] == '\0')
    (*info->err->format_message)(info, err->message);
}

// A header can claim any size (65,535 x 65,535 for a JPEG, far more for a PNG); a corrupt one
// must not make a decoder thread ask for gigabytes and die. 256 megapixels is a 768 MB RGB photo.
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

Status CheckSize(uint64_t width, uint64_t height, const std::string& name) {
  if (width == 0 || height == 0 || width * height > kMaxPixels)
    return DataError(name + ": its header says " + std::to_string(width) + "x" + std::to_string(height) +
                     " pixels; convoy reads photos of at most 256 megapixels");
  return Status::Ok();
}

// `image` belongs to the caller: this function's frame, which setjmp saves, holds only plain C
// objects, and nothing with a destructor is created between setjmp and a longjmp back to it.
Status DecodeJpeg(const uint8_t* bytes, size_t size, const std::string& name, int min_side, Image* out) {
  jpeg_decompress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = JpegErrorExit;
  err.mgr.emit_message = JpegWarning;
  err.message[0] = '\0';
  Image& image = *out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    return DataError(name + ": corrupt JPEG: " + err.message);
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, bytes, size);
  jpeg_read_header(&info, TRUE);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&info);
    return DataError(name + ": CMYK JPEGs are not supported; convert it to RGB");
  }
  if (Status size = CheckSize(info.image_width, info.image_height, name); !size.ok()) {
    jpeg_destroy_decompress(&info);
    return size;
  }
  info.out_color_space = JCS_RGB;  // libjpeg-turbo turns greyscale into RGB too
  const unsigned shorter = std::min(info.image_width, info.image_height);
  info.scale_num = 1;
  info.scale_denom = 1;
  while (min_side > 0 && info.scale_denom < 8 && shorter / (info.scale_denom * 2) >= 2u * min_side)
    info.scale_denom *= 2;
  jpeg_start_decompress(&info);
  image.width = static_cast<int>(info.output_width);
  image.height = static_cast<int>(info.output_height);
  image.channels = 3;
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = image.pixels.data() + static_cast<size_t>(info.output_scanline) * image.width * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (err.message[0] != '\0') return DataError(name + ": damaged JPEG: " + err.message);
  return Status::Ok();
}

Status DecodePng(const uint8_t* bytes, size_t size, const std::string& name, Image* out) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes, size)) return DataError(name + ": corrupt PNG: " + png.message);
  if (Status size = CheckSize(png.width, png.height, name); !size.ok()) {
    png_image_free(&png);
    return size;
  }
  png.format = PNG_FORMAT_RGB;
  Image& image = *out;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.channels = 3;
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  const png_color white = {255, 255, 255};
  if (!png_image_finish_read(&png, &white, image.pixels.data(), 0, nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    return DataError(name + ": corrupt PNG: " + message);
  }
  return Status::Ok();
}

}  // namespace

Status DecodeImage(const uint8_t* bytes, size_t size, const std::string& name, Image* out, int min_side) {
  if (size == 0) return DataError(name + ": empty file");
  if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    return DecodeJpeg(bytes, size, name, min_side, out);
  if (size >= 8 && std::memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0) return DecodePng(bytes, size, name, out);
  return DataError(name + ": neither a JPEG nor a PNG (its first bytes are not either's signature)");
}

StatusOr<Image> DecodeImage(const std::string& bytes, const std::string& name, int min_side) {
  Image image;
  RETURN_IF_ERROR(DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name, &image, min_side));
  return image;
}

StatusOr<Image> ReadImage(const std::string& path, int min_side) {
  // Read whole, so bounded first: a 256 MB file is far past any photo worth training on.
  constexpr uintmax_t kMaxPhotoBytes = uintmax_t{256} << 20;
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxPhotoBytes)
    return DataError(path + ": " + std::to_string(size >> 20) + " MB; convoy reads photos of at most 256 MB");
  ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path));
  return DecodeImage(bytes, path, min_side);
}

StatusOr<std::string> EncodeJpeg(const Image& image, int quality, const std::string& name) {
  if (image.channels != 1 && image.channels != 3)
    return InvalidInput(name + ": a JPEG holds 1 or 3 channels, the image has " + std::to_string(image.channels));
  jpeg_compress_struct info;
  JpegError err;
  unsigned char* buffer = nullptr;  // grown by libjpeg; freed here on every path
  unsigned long size = 0;
  info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = JpegErrorExit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&info);
    std::free(buffer);
    return Internal(name + ": JPEG encoding failed: " + err.message);
  }
  jpeg_create_compress(&info);
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = static_cast<JDIMENSION>(image.width);
  info.image_height = static_cast<JDIMENSION>(image.height);
  info.input_components = image.channels;
  info.in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  jpeg_start_compress(&info, TRUE);
  while (info.next_scanline < info.image_height) {
    auto* row = const_cast<JSAMPLE*>(image.pixels.data() +
                                     static_cast<size_t>(info.next_scanline) * image.width * image.channels);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return bytes;
}

Status WriteJpeg(const std::string& path, const Image& image, int quality) {
  ASSIGN_OR_RETURN(const std::string bytes, EncodeJpeg(image, quality, path));
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return InvalidInput(path + ": cannot open for writing");
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  return std::fclose(file) == 0 && written ? Status::Ok() : Internal(path + ": write failed");
}

Status WritePng(const std::string& path, const Image& image) {
  static const png_uint_32 kFormats[] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  if (image.channels < 1 || image.channels > 4)
    return InvalidInput(path + ": a PNG holds 1 to 4 channels, the image has " + std::to_string(image.channels));
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = kFormats[image.channels];
  if (!png_image_write_to_file(&png, path.c_str(), 0, image.pixels.data(), 0, nullptr))
    return Internal(path + ": PNG encoding failed: " + png.message);
  return Status::Ok();
}

}  // namespace convoy
