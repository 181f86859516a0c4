// Photos kept as JPEG in the shards: converted with --encoding jpeg, decoded by the prefetch
// threads into the same pixels (within JPEG's loss) at a fraction of the bytes; batches that do
// not depend on the number of threads; ImageNet's random-resized crop and centre-crop evaluation
// to a net smaller than the stored photos; exact resume; damaged and lying shards named; and
// --data-root reading a staged copy.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>

#include "io/augment.h"
#include "io/dataset.h"
#include "io/hdf5_shard.h"
#include "io/prefetcher.h"
#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

// 3 x 32 x 32 input: the small test net, in colour and larger.
std::string ColourNet(const std::string& data_extra) {
  return testing::Replace(testing::SmallNetText(), "channels: 1 height: 28 width: 28 }",
                          "channels: 3 height: 32 width: 32 " + data_extra + " }");
}

class JpegDataTest : public ::testing::Test {
 protected:
  // Fashion-MNIST photos upscaled to 44 x 44, converted at 36 x 36, raw and JPEG.
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    ASSERT_TRUE(testing::MakeFashionPhotoFolder(*dir_ / "photos", 400, 44).ok());
    for (const char* encoding : {"raw", "jpeg"}) {
      const auto r = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + (*dir_ / "photos") +
                                  " --size 36x36 --val-fraction 0.2 --shards 2 --threads 2 --encoding " + encoding +
                                  " --out " + (*dir_ / encoding));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      if (std::string(encoding) == "jpeg") {
        EXPECT_NE(r.output.find("(JPEG, quality 90)"), std::string::npos) << r.output;
      }
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string Path(const std::string& name) { return *dir_ / name; }

  std::string Solver(const std::string& run_dir, int max_iter, const std::string& extra = "") {
    testing::WriteFile(run_dir + "/net.prototxt",
                       ColourNet("random_resized_crop: true min_crop_area: 0.3 mirror: true"));
    testing::WriteFile(run_dir + "/solver.prototxt",
                       "net: \"net.prototxt\"\ntrain_data: \"" + Path("jpeg/train") + "\"\ntest_data: \"" +
                           Path("jpeg/val") + "\"\nbatch_size: 16\nmax_iter: " + std::to_string(max_iter) +
                           "\nbase_lr: 0.02\nmomentum: 0.9\ndisplay: 1000\nseed: 9\ndata_threads: 2\n" + extra);
    return run_dir + "/solver.prototxt";
  }

  static testing::TempDir* dir_;
  testing::TempDir own_;
};
testing::TempDir* JpegDataTest::dir_ = nullptr;

TEST_F(JpegDataTest, PhotosDecodeToTheRawPixelsWithinJpegLossAtAFractionOfTheBytes) {
  auto raw = Dataset::Open(Path("raw/train"));
  auto jpeg = Dataset::Open(Path("jpeg/train"));
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().message();
  EXPECT_FALSE(raw->encoded());
  EXPECT_TRUE(jpeg->encoded());
  ASSERT_EQ(raw->size(), jpeg->size());
  double diff = 0;
  for (int64_t i = 0; i < raw->size(); ++i) {
    ASSERT_EQ(raw->label(i), jpeg->label(i));
    const auto a = raw->ReadImage(i);
    const auto b = jpeg->ReadImage(i);
    ASSERT_TRUE(a.ok() && b.ok()) << b.status().message();
    ASSERT_EQ(a->size(), b->size());
    for (size_t p = 0; p < a->size(); ++p) diff += std::abs(int{(*a)[p]} - int{(*b)[p]});
  }
  diff /= static_cast<double>(raw->size() * raw->image_bytes());
  const double ratio = static_cast<double>(jpeg->stored_bytes()) / static_cast<double>(raw->stored_bytes());
  std::printf("JPEG at quality 90: %.2f grey levels from the raw pixels on average, %.1f%% of the bytes\n", diff,
              100 * ratio);
  EXPECT_LT(diff, 3.0);
  EXPECT_LT(ratio, 0.5);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(raw->manifest().mean(c), jpeg->manifest().mean(c), 1e-3);
}

// h5py, as a user's script would read a shard: the photo bytes between two offsets are a JPEG.
TEST_F(JpegDataTest, H5pyReadsAShardsPhotos) {
  if (testing::Run("/usr/bin/python3 -c 'import h5py'").exit_code != 0)
    GTEST_SKIP() << "python3-h5py is not installed (apt-get install python3-h5py)";
  const auto r =
      testing::Run("/usr/bin/python3 -c 'import h5py; f = h5py.File(\"" + Path("jpeg/train/shard-00000.h5") +
                   "\", \"r\"); o = f[\"jpeg_offsets\"]; b = f[\"jpeg\"][o[3]:o[4]].tobytes(); "
                   "print(len(f[\"labels\"]), len(o), b[:3] == b\"\\xff\\xd8\\xff\", b[-2:] == b\"\\xff\\xd9\")'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto jpeg = Dataset::Open(Path("jpeg/train"));
  ASSERT_TRUE(jpeg.ok());
  const int64_t n = static_cast<int64_t>(jpeg->manifest().shard(0).num_samples());
  EXPECT_EQ(r.output, std::to_string(n) + " " + std::to_string(n + 1) + " True True\n");
}

TEST_F(JpegDataTest, BatchesAreTheSameOnOneThreadOrThree) {
  auto jpeg = Dataset::Open(Path("jpeg/train"));
  auto raw = Dataset::Open(Path("raw/train"));
  ASSERT_TRUE(jpeg.ok() && raw.ok());
  auto batches = [](const Dataset& data, int threads, int height, Augmentation augment) {
    PrefetchOptions o;
    o.batch = 24;
    o.seed = 4;
    o.threads = threads;
    o.height = o.width = height;
    o.augment = augment;
    Prefetcher prefetcher(data, o);
    std::vector<float> all;
    for (int b = 0; b < 30; ++b) {  // more than two epochs
      const Batch* batch = prefetcher.Next();
      EXPECT_NE(batch, nullptr) << prefetcher.status().message();
      if (!batch) break;
      all.insert(all.end(), batch->images.begin(), batch->images.end());
      prefetcher.Release(batch);
    }
    return all;
  };
  Augmentation resized{0, true, 4, true, 0.2f};
  const std::vector<float> one = batches(*jpeg, 1, 32, resized);
  EXPECT_EQ(one, batches(*jpeg, 3, 32, resized));
  Augmentation padded{3, true, 4};
  EXPECT_EQ(batches(*raw, 1, 0, padded), batches(*raw, 2, 0, padded));
  // The crop and the flip change with the epoch: epoch 1's batches differ from epoch 0's.
  const size_t per_epoch = static_cast<size_t>(24 * 3 * 32 * 32) * static_cast<size_t>(jpeg->size() / 24);
  ASSERT_GE(one.size(), 2 * per_epoch);
  EXPECT_NE(std::vector<float>(one.begin(), one.begin() + per_epoch),
            std::vector<float>(one.begin() + per_epoch, one.begin() + 2 * per_epoch));
}

TEST(RandomResizedCropTest, RegionsFollowTheAreaAndAspectBoundsAndAreReproducible) {
  Augmentation a{0, false, 7, true, 0.08f};
  double area_sum = 0;
  for (uint32_t sample = 0; sample < 3000; ++sample) {
    const Region r = DrawResizedCrop(a, 2, sample, 256, 320);
    ASSERT_GE(r.y, 0);
    ASSERT_GE(r.x, 0);
    ASSERT_LE(r.y + r.height, 256);
    ASSERT_LE(r.x + r.width, 320);
    const double area = r.height * r.width / (256.0 * 320.0), aspect = r.width / r.height;
    ASSERT_GE(area, 0.075) << sample;  // 0.08 less the rounding of the sides
    ASSERT_LE(area, 1.0);
    ASSERT_GE(aspect, 0.74) << sample;
    ASSERT_LE(aspect, 1.35) << sample;
    area_sum += area;
    const Region again = DrawResizedCrop(a, 2, sample, 256, 320);
    ASSERT_EQ(r.y, again.y);
    ASSERT_EQ(r.width, again.width);
  }
  // Uniform area in [0.08, 1] (mean 0.54) less the large draws whose aspect does not fit the
  // 4:5 image and are drawn again: about 0.45.
  EXPECT_GT(area_sum / 3000, 0.40);
  EXPECT_LT(area_sum / 3000, 0.54);
  const Region other = DrawResizedCrop(a, 3, 0, 256, 320), first = DrawResizedCrop(a, 2, 0, 256, 320);
  EXPECT_FALSE(other.y == first.y && other.x == first.x && other.width == first.width);

  // Testing: Resize(256) + CenterCrop(224) of a 256 x 256 photo is its centre 224 x 224.
  const Region centre = CenterCropRegion(256, 256, 224, 224, 0.875f);
  EXPECT_DOUBLE_EQ(centre.y, 16);
  EXPECT_DOUBLE_EQ(centre.x, 16);
  EXPECT_DOUBLE_EQ(centre.height, 224);
  const Region wide = CenterCropRegion(300, 400, 224, 224, 0.875f);  // scaled by 256/300
  EXPECT_NEAR(wide.height, 224 * 300 / 256.0, 1e-9);
  EXPECT_NEAR(wide.x, (400 - 224 * 300 / 256.0) / 2, 1e-9);
}

// Training reads JPEG shards through two data threads with random-resized crops to 32 x 32, and
// tests on centre crops; 12 steps straight end with the same bytes as 6, stop, resume, 6 more.
TEST_F(JpegDataTest, TrainsOnCropsOfJpegPhotosAndResumesExactly) {
  const std::string straight = own_ / "straight", resumed = own_ / "resumed";
  fs::create_directories(straight), fs::create_directories(resumed);
  auto a = testing::Run(testing::ConvoyBinary() + " train --solver " + Solver(straight, 12) + " --run-dir " + straight +
                        "/run");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_TRUE(std::regex_search(a.output, std::regex("test  iter 12: loss [0-9.]+ accuracy [0-9.]+ \\(80 samples\\)")))
      << a.output;
  auto b = testing::Run(testing::ConvoyBinary() + " train --solver " + Solver(resumed, 6) + " --run-dir " + resumed +
                        "/run");
  ASSERT_EQ(b.exit_code, 0) << b.output;
  auto c = testing::Run(testing::ConvoyBinary() + " train --solver " + Solver(resumed, 12) + " --run-dir " + resumed +
                        "/run --resume latest --data-threads 3");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  auto state = [](const std::string& run) {
    auto ckpt = LoadCheckpoint(run + "/run/checkpoints/ckpt-12.pb");
    EXPECT_TRUE(ckpt.ok()) << ckpt.status().message();
    std::string bytes;
    if (ckpt.ok())
      for (const auto& p : ckpt->param()) bytes += p.data();
    return bytes;
  };
  const std::string x = state(straight), y = state(resumed);
  EXPECT_FALSE(x.empty());
  EXPECT_TRUE(x == y) << "the resumed run's weights differ from the straight run's";
  // predict sees a photo as evaluation does: the centre of it scaled to 32 / 0.875.
  std::string photo;
  for (const auto& entry : fs::recursive_directory_iterator(Path("photos")))
    if (entry.path().extension() == ".jpg") photo = entry.path();
  auto predicted = testing::Run(testing::ConvoyBinary() + " predict --checkpoint " + straight +
                                "/run/checkpoints/ckpt-12.pb " + photo);
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_TRUE(std::regex_search(predicted.output, std::regex("  5\\. [a-z-]+ +0\\.[0-9]{4}"))) << predicted.output;
}

TEST_F(JpegDataTest, BadSettingsAndDamagedPhotosAreNamedWithExitTwo) {
  const std::string run = own_ / "bad";
  fs::create_directories(run);
  auto zero = testing::Run(testing::ConvoyBinary() + " train --solver " + Solver(run, 4) + " --run-dir " + run +
                           "/r0 --data-threads 0");
  EXPECT_EQ(zero.exit_code, 2) << zero.output;
  EXPECT_NE(zero.output.find("--data-threads expects 1 or more threads per rank, found 0"), std::string::npos)
      << zero.output;
  auto valid =
      testing::Run(testing::ConvoyBinary() + " train --solver " + Solver(run, 4) + " --run-dir " + run + "/r1");
  ASSERT_EQ(valid.exit_code, 0) << valid.output;
  testing::WriteFile(run + "/net.prototxt", ColourNet("random_resized_crop: true crop_pad: 2"));
  testing::WriteFile(run + "/solver2.prototxt", testing::ReadFile(run + "/solver.prototxt"));
  auto both =
      testing::Run(testing::ConvoyBinary() + " train --solver " + run + "/solver2.prototxt --run-dir " + run + "/r2");
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_NE(both.output.find("random_resized_crop and crop_pad are two ways to crop; set one"), std::string::npos)
      << both.output;

  // A damaged photo: one byte of the JPEG data changed after conversion.
  const std::string copy = own_ / "damaged";
  fs::copy(Path("jpeg"), copy, fs::copy_options::recursive);
  const std::string shard = copy + "/train/shard-00001.h5";
  std::string bytes = testing::ReadFile(shard);
  const size_t at = bytes.find("\xff\xd8\xff", 4096) + 700;  // inside a photo
  bytes[at] = static_cast<char>(~bytes[at]);
  testing::WriteFile(shard, bytes);
  testing::WriteFile(run + "/solver3.prototxt",
                     testing::Replace(testing::ReadFile(Solver(run, 4)), Path("jpeg"), copy));
  auto damaged =
      testing::Run(testing::ConvoyBinary() + " train --solver " + run + "/solver3.prototxt --run-dir " + run + "/r3");
  EXPECT_EQ(damaged.exit_code, 2) << damaged.output;
  EXPECT_TRUE(std::regex_search(damaged.output, std::regex("shard-00001.h5: chunk [0-9]+ \\(samples [0-9]+ to [0-9]+ "
                                                           "of the shard\\) differs from its checksum")))
      << damaged.output;
  EXPECT_FALSE(fs::exists(run + "/r3/checkpoints/latest"));
}

TEST(JpegShardTest, OffsetsThatLieAreRefusedAtOpen) {
  testing::TempDir dir;
  ShardData shard;
  shard.count = 2;
  shard.jpeg = std::vector<uint8_t>(100, 7);
  shard.jpeg_offsets = {0, 60, 50};  // photo 1 would have -10 bytes
  shard.labels = {0, 1};
  ASSERT_TRUE(WriteShard(dir / "s.h5", shard).ok());
  auto reader = ShardReader::Open(dir / "s.h5", 1);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("jpeg_offsets puts photo 1 between bytes 60 and 50"), std::string::npos)
      << reader.status().message();
  shard.jpeg_offsets = {0, 60, 90};  // ends short of the data
  ASSERT_TRUE(WriteShard(dir / "s.h5", shard).ok());
  reader = ShardReader::Open(dir / "s.h5", 1);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("jpeg_offsets spans bytes 0 to 90 but 'jpeg' holds 0 to 100"),
            std::string::npos)
      << reader.status().message();
}

// A job that staged its shards onto a node's disk reads them there: DATA_ROOT/<folder name>.
TEST_F(JpegDataTest, DataRootReadsTheStagedCopy) {
  const std::string run = own_ / "staged", root = own_ / "local-disk";
  fs::create_directories(run);
  fs::create_directories(root);
  fs::copy(Path("jpeg/train"), root + "/train", fs::copy_options::recursive);
  fs::copy(Path("jpeg/val"), root + "/val", fs::copy_options::recursive);
  testing::WriteFile(run + "/net.prototxt", ColourNet("random_resized_crop: true"));
  testing::WriteFile(run + "/solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"/nowhere/train\"\ntest_data: \"/nowhere/val\"\n"
                     "batch_size: 16\nmax_iter: 3\n");
  auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + run + "/solver.prototxt --run-dir " + run +
                        "/run --data-root " + root);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto without =
      testing::Run(testing::ConvoyBinary() + " train --solver " + run + "/solver.prototxt --run-dir " + run + "/run2");
  EXPECT_EQ(without.exit_code, 2) << without.output;
  EXPECT_NE(without.output.find("/nowhere/train/manifest.prototxt: no dataset manifest here"), std::string::npos)
      << without.output;
}

}  // namespace
}  // namespace convoy
