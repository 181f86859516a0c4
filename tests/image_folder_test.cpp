// Converting photos: a folder per class of real JPEG and PNG files in several sizes and colour
// modes (written here with libjpeg-turbo and libpng), plus a corrupt and an empty file, through
// `convoy convert --format imagefolder`; and CIFAR binary files made from Fashion-MNIST.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "io/dataset.h"
#include "io/image_codec.h"
#include "io/image_resize.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

// A w x h photo of one colour (channels 1 to 4; the colour's first `channels` values).
Image Solid(int w, int h, int channels, std::array<uint8_t, 4> colour) {
  Image image;
  image.width = w, image.height = h, image.channels = channels;
  for (int i = 0; i < w * h; ++i)
    for (int c = 0; c < channels; ++c) image.pixels.push_back(colour[c]);
  return image;
}

class ImageFolderTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
};

TEST_F(ImageFolderTest, ConvertsEveryModeAndReportsBadFilesByPath) {
  const fs::path in = dir_ / "photos";
  for (const char* c : {"bird", "cat", "dog"}) fs::create_directories(in / c);
  // cat: red in every colour mode and size; dog: grey; bird: blue, including one with alpha.
  ASSERT_TRUE(WriteJpeg(in / "cat/a.jpg", Solid(40, 30, 3, {250, 0, 0, 0})).ok());
  ASSERT_TRUE(WritePng(in / "cat/b.png", Solid(64, 64, 3, {250, 0, 0, 0})).ok());
  ASSERT_TRUE(WritePng(in / "cat/c.PNG", Solid(17, 33, 4, {250, 0, 0, 255})).ok());
  ASSERT_TRUE(WriteJpeg(in / "cat/d.jpeg", Solid(100, 7, 3, {250, 0, 0, 0})).ok());
  ASSERT_TRUE(WriteJpeg(in / "dog/a.jpg", Solid(25, 50, 1, {128, 0, 0, 0})).ok());
  ASSERT_TRUE(WritePng(in / "dog/b.png", Solid(31, 31, 1, {128, 0, 0, 0})).ok());
  ASSERT_TRUE(WritePng(in / "dog/c.png", Solid(9, 12, 2, {128, 255, 0, 0})).ok());  // grey + alpha
  ASSERT_TRUE(WritePng(in / "dog/d.png", Solid(16, 16, 1, {128, 0, 0, 0})).ok());
  ASSERT_TRUE(WritePng(in / "bird/a.png", Solid(20, 20, 3, {0, 0, 250, 0})).ok());
  ASSERT_TRUE(WriteJpeg(in / "bird/b.jpg", Solid(48, 36, 3, {0, 0, 250, 0})).ok());
  ASSERT_TRUE(WritePng(in / "bird/c.png", Solid(8, 8, 4, {0, 0, 250, 0})).ok());  // fully transparent: white
  // A JPEG cut off after its header, and an empty PNG: skipped and named, not fatal.
  {
    std::ifstream good(in / "cat/a.jpg", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(good)), {});
    std::ofstream(in / "cat/broken.jpg", std::ios::binary) << bytes.substr(0, 200);
    std::ofstream(in / "dog/empty.png");
    std::ofstream(in / "bird/notes.txt") << "not a photo";
  }

  const fs::path out = dir_ / "out";
  auto r = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + in.string() +
                        " --size 16x12 --val-fraction 0.25 --threads 2 --shards 2 --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("converted 11 of 13 photos"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped 2 unreadable photo(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((in / "cat/broken.jpg").string() + ": corrupt JPEG"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((in / "dog/empty.png").string() + ": empty file"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((in / "bird/notes.txt").string() + " (not .jpg, .jpeg or .png)"), std::string::npos)
      << r.output;

  auto train = Dataset::Open(out / "train");
  auto val = Dataset::Open(out / "val");
  ASSERT_TRUE(train.ok()) << train.status().message();
  ASSERT_TRUE(val.ok()) << val.status().message();
  const auto& m = train->manifest();
  EXPECT_EQ(m.channels(), 3u);
  EXPECT_EQ(m.height(), 16u);
  EXPECT_EQ(m.width(), 12u);
  EXPECT_EQ(m.num_classes(), 3u);
  ASSERT_EQ(m.class_name_size(), 3);
  EXPECT_EQ(m.class_name(0), "bird");  // label order: sorted folder names
  EXPECT_EQ(m.class_name(1), "cat");
  EXPECT_EQ(m.class_name(2), "dog");
  EXPECT_EQ(m.shard_size(), 2);
  // Stratified: round(0.25 x good photos) of each class held out: bird 3 -> 1, cat 4 -> 1, dog 4 -> 1.
  EXPECT_EQ(train->size(), 8);
  EXPECT_EQ(val->size(), 3);
  std::map<int, int> val_per_class;
  for (int64_t i = 0; i < val->size(); ++i) ++val_per_class[val->label(i)];
  EXPECT_EQ(val_per_class, (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}}));

  // Every photo became 3 x 16 x 12 RGB of its class's colour, whatever its mode and size.
  const std::array<std::array<int, 3>, 3> colour = {{{0, 0, 250}, {250, 0, 0}, {128, 128, 128}}};
  for (const Dataset* d : {&*train, &*val})
    for (int64_t i = 0; i < d->size(); ++i) {
      const auto image = d->ReadImage(i);
      ASSERT_TRUE(image.ok()) << image.status().message();
      const uint8_t* px = image->data();
      const int label = d->label(i);
      bool white = true;  // the transparent bird composites onto white
      for (int c = 0; c < 3; ++c) white = white && px[c * 192] == 255;
      if (white && label == 0) continue;
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 192; p += 37)
          EXPECT_NEAR(px[c * 192 + p], colour[label][c], 6) << "sample " << i << " class " << label << " channel " << c;
    }

  // The same seed picks the same validation photos; the manifest is there only when done.
  auto again = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + in.string() +
                            " --size 16x12 --val-fraction 0.25 --threads 1 --out " + (dir_ / "again"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  auto val2 = Dataset::Open(dir_ / "again/val");
  ASSERT_TRUE(val2.ok());
  for (int64_t i = 0; i < val->size(); ++i) EXPECT_EQ(*val->ReadImage(i), *val2->ReadImage(i)) << i;
}

// A header may claim any size: a JPEG saying 30000 x 30000 (libjpeg accepts up to 65500) is
// refused by path before 2.7 GB are asked for.
TEST_F(ImageFolderTest, PhotoClaimingAHugeSizeIsSkippedByPath) {
  const fs::path in = dir_ / "photos";
  fs::create_directories(in / "cat");
  ASSERT_TRUE(WriteJpeg(in / "cat/a.jpg", Solid(40, 30, 3, {250, 0, 0, 0})).ok());
  std::ifstream good(in / "cat/a.jpg", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(good)), {});
  const size_t sof = bytes.find("\xFF\xC0");  // baseline frame header: length, precision, height, width
  ASSERT_NE(sof, std::string::npos);
  for (size_t k : {sof + 5, sof + 7}) bytes[k] = '\x75', bytes[k + 1] = '\x30';  // 0x7530 = 30000
  std::ofstream(in / "cat/huge.jpg", std::ios::binary) << bytes;
  auto r = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + in.string() +
                        " --size 8x8 --out " + (dir_ / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find((in / "cat/huge.jpg").string() + ": its header says 30000x30000 pixels"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("converted 1 of 2 photos"), std::string::npos) << r.output;
}

TEST_F(ImageFolderTest, BadInvocationsAreClearErrors) {
  fs::create_directories(dir_ / "flat");
  std::ofstream(dir_ / "flat/x.jpg") << "x";
  struct Case {
    std::string args, needle;
  };
  for (const Case& c :
       std::vector<Case>{{"--in " + (dir_ / "missing") + " --size 8x8", "not a folder"},
                         {"--in " + (dir_ / "flat") + " --size 8x8", "has no class folders"},
                         {"--in " + (dir_ / "flat") + " --size 8", "--size expects HxW"},
                         {"--in " + (dir_ / "flat"), "--size is required"},
                         {"--in " + (dir_ / "flat") + " --size 8x8 --val-fraction 1.5", "--val-fraction expects"}}) {
    auto r =
        testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --out " + (dir_ / "o") + " " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("Aborted"), std::string::npos) << r.output;
  }
}

TEST(ImageResizeTest, ShorterSideThenCentreCropAveragesWhenShrinking) {
  // 80 x 40: left quarter black, the rest white; to 8 x 8 the centre 40 x 40 is kept, whose
  // left eighth (x 20..39 -> 0..1 scaled) is black.
  Image image;
  image.width = 80, image.height = 40, image.channels = 1;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 80; ++x) image.pixels.push_back(x < 25 ? 0 : 255);
  std::vector<uint8_t> out(64);
  ResizeAndCenterCrop(image, 8, 8, out.data());
  for (int y = 0; y < 8; ++y) {
    EXPECT_LT(out[y * 8 + 0], 60) << "column 0 is mostly black";
    EXPECT_GT(out[y * 8 + 1], 150) << "column 1 straddles the edge, mostly white";
    for (int x = 2; x < 8; ++x) EXPECT_EQ(out[y * 8 + x], 255);
  }
}

TEST_F(ImageFolderTest, CifarBinaryFromFashionMnist) {
  // CIFAR-10's layout, filled with real images: Fashion-MNIST's 28 x 28 centred in 32 x 32, grey
  // in all three planes.
  auto idx = testing::WriteFashionMnistSubset(dir_ / "idx", 60);
  ASSERT_TRUE(idx.ok());
  std::ifstream images(idx->images, std::ios::binary), labels(idx->labels, std::ios::binary);
  std::string img((std::istreambuf_iterator<char>(images)), {}), lab((std::istreambuf_iterator<char>(labels)), {});
  const fs::path cifar = dir_ / "cifar-10-batches-bin";
  fs::create_directories(cifar);
  auto record = [&](int i) {
    std::string r(1, lab[8 + i]);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
          r += inside ? img[16 + i * 784 + (y - 2) * 28 + (x - 2)] : '\0';
        }
    return r;
  };
  for (int b = 1; b <= 5; ++b) {
    std::ofstream out(cifar / ("data_batch_" + std::to_string(b) + ".bin"), std::ios::binary);
    for (int i = (b - 1) * 10; i < b * 10; ++i) out << record(i);
  }
  {
    std::ofstream out(cifar / "test_batch.bin", std::ios::binary);
    for (int i = 50; i < 60; ++i) out << record(i);
    std::ofstream names(cifar / "batches.meta.txt");
    for (const char* n : testing::kFashionClasses) names << n << "\n";
  }
  auto r = testing::Run(testing::ConvoyBinary() + " convert --format cifar --in " + cifar.string() + " --out " +
                        (dir_ / "c"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CIFAR-10: 50 training and 10 test images, 10 classes"), std::string::npos) << r.output;
  auto train = Dataset::Open(dir_ / "c/train");
  ASSERT_TRUE(train.ok()) << train.status().message();
  EXPECT_EQ(train->manifest().class_name(9), "ankle-boot");
  EXPECT_EQ(train->label(7), static_cast<unsigned char>(lab[8 + 7]));
  EXPECT_EQ(train->ReadImage(7)->at(2 * 1024 + 10 * 32 + 12), static_cast<uint8_t>(img[16 + 7 * 784 + 8 * 28 + 10]));

  // A truncated batch is refused by name.
  fs::resize_file(cifar / "data_batch_3.bin", 5000);
  r = testing::Run(testing::ConvoyBinary() + " convert --format cifar --in " + cifar.string() + " --out " +
                   (dir_ / "d"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("data_batch_3.bin: 5000 bytes is not a whole number of 3073-byte records"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// Damaged or hostile photo folders: a JPEG cut short is skipped by name (libjpeg would pad it
// with grey and say nothing), and a symlink loop is listed as unreadable instead of ending the
// conversion with an uncaught exception.
TEST_F(ImageFolderTest, TruncatedPhotosAndSymlinkLoopsAreReportedByPath) {
  const fs::path in = dir_ / "photos";
  fs::create_directories(in / "cat");
  Image noisy = Solid(128, 96, 3, {0, 0, 0, 0});  // detail, so most of the file is image data
  for (size_t i = 0; i < noisy.pixels.size(); ++i) noisy.pixels[i] = static_cast<uint8_t>((i * 7919) % 251);
  ASSERT_TRUE(WriteJpeg(in / "cat/a.jpg", noisy).ok());
  std::string bytes = testing::ReadFile(in / "cat/a.jpg");
  std::ofstream(in / "cat/cut.jpg", std::ios::binary) << bytes.substr(0, bytes.size() * 6 / 10);
  fs::create_symlink(in / "cat/loop-b.jpg", in / "cat/loop-a.jpg");
  fs::create_symlink(in / "cat/loop-a.jpg", in / "cat/loop-b.jpg");
  auto r = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + in.string() +
                        " --size 8x8 --out " + (dir_ / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find((in / "cat/cut.jpg").string() + ": damaged JPEG: Premature end of JPEG file"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find((in / "cat/loop-a.jpg").string() + " (cannot be read: Too many levels of symbolic links)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("converted 1 of 2 photos"), std::string::npos) << r.output;
}

TEST_F(ImageFolderTest, AnEmptyIdxFileIsAClearError) {
  auto idx = testing::WriteFashionMnistSubset(dir_ / "idx", 0);
  ASSERT_TRUE(idx.ok()) << idx.status().message();
  auto r = testing::Run(testing::ConvoyBinary() + " convert --format idx --images " + idx->images + " --labels " +
                        idx->labels + " --shards 1 --out " + (dir_ / "out"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("holds no samples; nothing to convert"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace convoy
