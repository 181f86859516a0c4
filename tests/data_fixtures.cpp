#include "tests/data_fixtures.h"

#include <filesystem>
#include <fstream>

#include "io/dataset_writer.h"
#include "io/idx_reader.h"
#include "io/image_codec.h"
#include "tests/test_util.h"

namespace convoy::testing {
namespace {

void WriteIdx(const std::string& path, const std::vector<uint32_t>& dims, const uint8_t* data) {
  std::ofstream out(path, std::ios::binary);
  const unsigned char magic[4] = {0, 0, 8, static_cast<unsigned char>(dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  size_t count = 1;
  for (uint32_t d : dims) {
    const unsigned char be[4] = {static_cast<unsigned char>(d >> 24), static_cast<unsigned char>(d >> 16),
                                 static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
    out.write(reinterpret_cast<const char*>(be), 4);
    count *= d;
  }
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count));
}

}  // namespace

StatusOr<IdxPair> WriteFashionMnistSubset(const std::string& dir, int count, bool train) {
  const std::string prefix = std::string(kFashionMnistDir) + (train ? "/train" : "/t10k");
  ASSIGN_OR_RETURN(IdxArray images, ReadIdx(prefix + "-images-idx3-ubyte.gz"));
  ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(prefix + "-labels-idx1-ubyte.gz"));
  IdxPair out{dir + "/images.idx", dir + "/labels.idx"};
  std::filesystem::create_directories(dir);
  WriteIdx(out.images, {static_cast<uint32_t>(count), images.dims[1], images.dims[2]}, images.data.data());
  WriteIdx(out.labels, {static_cast<uint32_t>(count)}, labels.data.data());
  return out;
}

Status MakeFashionMnistDataset(const std::string& dir, int count, int shards, bool train) {
  ASSIGN_OR_RETURN(IdxPair idx, WriteFashionMnistSubset(dir + "-idx", count, train));
  return ConvertIdx(idx.images, idx.labels, shards, dir);
}

const char* const kFashionClasses[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                         "sandal",  "shirt",   "sneaker",  "bag",   "ankle-boot"};

Status MakeFashionPhotoFolder(const std::string& dir, int count, int side) {
  ASSIGN_OR_RETURN(IdxArray images, ReadIdx(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz"));
  ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(std::string(kFashionMnistDir) + "/train-labels-idx1-ubyte.gz"));
  for (const char* name : kFashionClasses) std::filesystem::create_directories(dir + "/" + name);
  for (int i = 0; i < count; ++i) {
    Image photo;
    photo.width = photo.height = side;
    photo.channels = 1;
    photo.pixels.resize(static_cast<size_t>(side) * side);
    for (int y = 0; y < side; ++y)  // nearest-neighbour upscale of the 28 x 28 original
      for (int x = 0; x < side; ++x)
        photo.pixels[static_cast<size_t>(y) * side + x] =
            images.data[static_cast<size_t>(i) * 784 + (y * 28 / side) * 28 + x * 28 / side];
    const std::string base = dir + "/" + kFashionClasses[labels.data[i]] + "/" + std::to_string(i);
    RETURN_IF_ERROR(i % 2 == 0 ? WritePng(base + ".png", photo) : WriteJpeg(base + ".jpg", photo, 95));
  }
  return Status::Ok();
}

std::string SmallNetText() {
  return R"(name: "small"
layer { name: "data" type: "Data" top: "data" top: "label"
        data_param { channels: 1 height: 28 width: 28 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 weight_filler { type: XAVIER } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        inner_product_param { num_output: 32 weight_filler { type: XAVIER } } }
layer { name: "relu2" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "drop" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.2 } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 10 weight_filler { type: XAVIER } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
)";
}

}  // namespace convoy::testing
