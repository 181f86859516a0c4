// Converting real Fashion-MNIST images into shards, reading them back, and every way a shard
// can be wrong: each is an error naming the file and what differs.
#include "io/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>

#include "core/text_format.h"
#include "io/epoch_order.h"
#include "io/prefetcher.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

using testing::TempDir;

TEST(DatasetTest, ConvertsAndReadsBackRealImages) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 300, 3).ok());
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->size(), 300);
  EXPECT_EQ(ds->manifest().shard_size(), 3);
  EXPECT_EQ(ds->manifest().shard(0).num_samples() + ds->manifest().shard(1).num_samples() +
                ds->manifest().shard(2).num_samples(),
            300u);
  EXPECT_EQ(ds->manifest().num_classes(), 10u);
  EXPECT_GT(ds->manifest().mean(0), 20.f);  // real clothing images: mostly dark, not empty
  EXPECT_GT(ds->manifest().std(0), 20.f);
  // The first Fashion-MNIST training label is 9 (ankle boot), the second 0 (T-shirt/top).
  EXPECT_EQ(ds->label(0), 9);
  EXPECT_EQ(ds->label(1), 0);
}

TEST(DatasetTest, MissingShardIsNamed) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 100, 2).ok());
  std::filesystem::remove(dir / "ds/shard-00001.h5");
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().ExitCode(), 2);
  EXPECT_NE(ds.status().message().find("shard-00001.h5"), std::string::npos) << ds.status().message();
  EXPECT_NE(ds.status().message().find("missing"), std::string::npos) << ds.status().message();
}

TEST(DatasetTest, TruncatedShardIsNamed) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 100, 1).ok());
  const std::string shard = dir / "ds/shard-00000.h5";
  std::filesystem::resize_file(shard, std::filesystem::file_size(shard) / 2);
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("shard-00000.h5"), std::string::npos) << ds.status().message();
}

TEST(DatasetTest, FlippedBytesFailTheChecksum) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 100, 1).ok());
  const std::string shard = dir / "ds/shard-00000.h5";
  std::string bytes = testing::ReadFile(shard);
  // Flip pixels well inside the image data (HDF5's metadata sits in the first few KiB).
  for (size_t i = bytes.size() - 20000; i < bytes.size() - 19000; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  testing::WriteFile(shard, bytes);
  // Opening reads no image bytes; the chunk is checked when it is read, and named with its samples.
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  auto chunk = ds->ReadChunk(0);
  ASSERT_FALSE(chunk.ok());
  EXPECT_NE(chunk.status().message().find("shard-00000.h5: chunk 0 (samples 0 to 99 of the shard) differs from its "
                                          "checksum"),
            std::string::npos)
      << chunk.status().message();
}

// A manifest from before chunk checksums (convoy 0.1) still has its shards checked, whole, at start.
TEST(DatasetTest, ManifestsWithoutChunkChecksumsAreCheckedWholeAtStart) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 100, 1).ok());
  const std::string manifest = dir / "ds/manifest.prototxt";
  testing::WriteFile(manifest,
                     std::regex_replace(testing::ReadFile(manifest), std::regex("chunk_(checksum|rows): [0-9]+"), ""));
  auto old = Dataset::Open(dir / "ds");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_TRUE(old->ReadChunk(0).ok());
  const std::string shard = dir / "ds/shard-00000.h5";
  std::string bytes = testing::ReadFile(shard);
  bytes[bytes.size() - 20000] = static_cast<char>(~bytes[bytes.size() - 20000]);
  testing::WriteFile(shard, bytes);
  auto damaged = Dataset::Open(dir / "ds");
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("checksum differs"), std::string::npos) << damaged.status().message();
}

TEST(DatasetTest, CountDifferingFromManifestIsNamed) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 100, 1).ok());
  const std::string manifest = dir / "ds/manifest.prototxt";
  testing::WriteFile(manifest, testing::Replace(testing::ReadFile(manifest), "num_samples: 100", "num_samples: 120"));
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("sample count"), std::string::npos) << ds.status().message();
  EXPECT_NE(ds.status().message().find("120"), std::string::npos);
  EXPECT_NE(ds.status().message().find("100"), std::string::npos);
}

TEST(DatasetTest, ShapeDifferingFromManifestIsNamed) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 50, 1).ok());
  const std::string manifest = dir / "ds/manifest.prototxt";
  testing::WriteFile(manifest, testing::Replace(testing::ReadFile(manifest), "height: 28", "height: 32"));
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("image shape"), std::string::npos) << ds.status().message();
  EXPECT_NE(ds.status().message().find("1x32x28"), std::string::npos) << ds.status().message();
}

TEST(EpochOrderTest, IsAPermutationThatDependsOnSeedAndEpoch) {
  for (uint32_t n : {1u, 2u, 17u, 1000u}) {
    const auto a = EpochOrder(n, 5, 0, true);
    EXPECT_EQ(std::set<uint32_t>(a.begin(), a.end()).size(), n);
    EXPECT_EQ(a, EpochOrder(n, 5, 0, true));  // deterministic
    if (n >= 17) {
      EXPECT_NE(a, EpochOrder(n, 5, 1, true));
      EXPECT_NE(a, EpochOrder(n, 6, 0, true));
    }
  }
}

TEST(PrefetcherTest, EveryEpochVisitsEverySampleOnce) {
  TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "ds", 200, 2).ok());
  auto ds = Dataset::Open(dir / "ds");
  ASSERT_TRUE(ds.ok());
  PrefetchOptions options;
  options.batch = 20;
  options.depth = 2;
  Prefetcher prefetcher(*ds, options);
  ASSERT_EQ(prefetcher.steps_per_epoch(), 10);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<std::vector<float>> seen;
    for (int step = 0; step < 10; ++step) {
      const Batch* b = prefetcher.Next();
      ASSERT_EQ(b->epoch, static_cast<uint64_t>(epoch));
      ASSERT_EQ(b->step, static_cast<uint64_t>(step));
      for (int i = 0; i < b->size; ++i)
        seen.insert(std::vector<float>(b->images.begin() + i * 784, b->images.begin() + (i + 1) * 784));
      prefetcher.Release(b);
    }
    EXPECT_EQ(seen.size(), 200u);
    int distinct = 0;
    for (auto it = seen.begin(); it != seen.end(); it = seen.upper_bound(*it)) ++distinct;
    EXPECT_EQ(distinct, 200);  // the first 200 Fashion-MNIST images are all different
  }
}

}  // namespace
}  // namespace convoy
