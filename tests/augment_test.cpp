// Augmentation in the prefetch thread: the same seed gives the same augmented batches, another
// seed or epoch other ones; a flip is an exact mirror; evaluation passes see the images as they are.
#include <gtest/gtest.h>

#include "io/prefetcher.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

class AugmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::MakeFashionMnistDataset(dir_ / "data", 64, 1).ok());
    auto d = Dataset::Open(dir_ / "data");
    ASSERT_TRUE(d.ok()) << d.status().message();
    data_ = std::make_unique<Dataset>(std::move(d).value());
  }
  // The images of the first `batches` batches a prefetcher gives.
  std::vector<float> Images(const PrefetchOptions& options, int batches) {
    Prefetcher p(*data_, options);
    std::vector<float> out;
    for (int i = 0; i < batches; ++i) {
      const Batch* b = p.Next();
      out.insert(out.end(), b->images.begin(), b->images.begin() + int64_t{b->size} * 784);
      p.Release(b);
    }
    return out;
  }
  PrefetchOptions Options(int crop_pad, bool mirror, uint64_t seed) {
    PrefetchOptions o;
    o.batch = 16;
    o.shuffle = false;
    o.augment = {crop_pad, mirror, seed};
    return o;
  }
  testing::TempDir dir_;
  std::unique_ptr<Dataset> data_;
};

TEST_F(AugmentTest, SameSeedSameBatchesOtherSeedOrEpochOthers) {
  const auto plain = Images(Options(0, false, 1), 8);  // two epochs of 4 batches
  const auto a = Images(Options(4, true, 7), 8);
  const auto b = Images(Options(4, true, 7), 8);
  const auto c = Images(Options(4, true, 8), 8);
  EXPECT_EQ(a, b) << "the same seed must give the same augmented batches";
  EXPECT_NE(a, c) << "another seed, other crops and flips";
  EXPECT_NE(a, plain);
  // Epoch 1 repeats epoch 0's samples (no shuffle) but draws new crops and flips.
  const size_t epoch = 64 * 784;
  EXPECT_EQ(std::vector<float>(plain.begin(), plain.begin() + epoch),
            std::vector<float>(plain.begin() + epoch, plain.end()));
  EXPECT_NE(std::vector<float>(a.begin(), a.begin() + epoch), std::vector<float>(a.begin() + epoch, a.end()));
}

TEST_F(AugmentTest, FlipsAreExactMirrorsAndRoughlyHalf) {
  const auto plain = Images(Options(0, false, 1), 4);
  const auto flipped = Images(Options(0, true, 3), 4);
  int mirrored = 0;
  for (int i = 0; i < 64; ++i) {
    const float* p = plain.data() + i * 784;
    const float* f = flipped.data() + i * 784;
    bool same = true, mirror = true;
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        same = same && f[y * 28 + x] == p[y * 28 + x];
        mirror = mirror && f[y * 28 + x] == p[y * 28 + 27 - x];
      }
    ASSERT_TRUE(same || mirror) << "sample " << i << " is neither itself nor its mirror";
    mirrored += mirror && !same;
  }
  EXPECT_GT(mirrored, 16);
  EXPECT_LT(mirrored, 48);
}

TEST_F(AugmentTest, CropsShiftByAtMostThePadding) {
  const auto plain = Images(Options(0, false, 1), 1);
  const auto cropped = Images(Options(2, false, 5), 1);
  for (int i = 0; i < 16; ++i) {
    const float* p = plain.data() + i * 784;
    const float* c = cropped.data() + i * 784;
    bool found = false;
    for (int dy = -2; dy <= 2 && !found; ++dy)
      for (int dx = -2; dx <= 2 && !found; ++dx) {
        bool match = true;
        for (int y = 0; y < 28 && match; ++y)
          for (int x = 0; x < 28 && match; ++x) {
            const int sy = y + dy, sx = x + dx;
            const float expected = sy >= 0 && sy < 28 && sx >= 0 && sx < 28 ? p[sy * 28 + sx] : 0.f;
            match = c[y * 28 + x] == expected;
          }
        found = match;
      }
    EXPECT_TRUE(found) << "sample " << i << " is no shift of at most 2 pixels of its original";
  }
}

}  // namespace
}  // namespace convoy
