// ShardPlan's properties over many (samples, ranks, batch, epoch, seed): within an epoch no
// sample is used twice across all ranks, every rank has the same number of steps, only the
// remainder (fewer than one global batch) is left out, the plan is deterministic, each rank
// reads about its share of the chunks, and every batch mixes many chunks.
#include "io/shard_plan.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "io/epoch_order.h"

namespace convoy {
namespace {

TEST(ShardPlanTest, EachSampleAtMostOnceAndOnlyTheRemainderDropped) {
  for (uint64_t samples : {64u, 100u, 997u, 6000u})
    for (int ranks : {1, 2, 3, 5})
      for (int batch : {1, 7, 32})
        for (uint64_t epoch : {0u, 3u})
          for (uint64_t seed : {1u, 99u}) {
            const ShardPlan plan(samples, ranks, batch, seed, true);
            const int64_t steps = plan.steps_per_epoch();
            ASSERT_EQ(steps, static_cast<int64_t>(samples / (uint64_t(batch) * ranks)));
            std::vector<int> uses(samples, 0);
            for (int r = 0; r < ranks; ++r) {
              const auto mine = plan.RankSamples(r, epoch);
              ASSERT_EQ(static_cast<int64_t>(mine.size()), steps * batch) << "rank " << r;
              for (uint32_t s : mine) ++uses[s];
              ASSERT_EQ(mine, plan.RankSamples(r, epoch)) << "not deterministic";
            }
            int64_t used = 0;
            for (int u : uses) {
              ASSERT_LE(u, 1) << samples << " samples, " << ranks << " ranks, batch " << batch;
              used += u;
            }
            ASSERT_EQ(used, steps * batch * ranks);
            ASSERT_LT(samples - used, uint64_t(batch) * ranks) << "more than the remainder was left out";
          }
}

TEST(ShardPlanTest, TwoRanksSplitWhatOneRankWithTheirCombinedBatchSees) {
  const ShardPlan one(1000, 1, 64, 5, true), two(1000, 2, 32, 5, true);
  const auto all = one.RankSamples(0, 2), r0 = two.RankSamples(0, 2), r1 = two.RankSamples(1, 2);
  ASSERT_EQ(one.steps_per_epoch(), two.steps_per_epoch());
  for (int64_t s = 0; s < one.steps_per_epoch(); ++s)
    for (int i = 0; i < 32; ++i) {
      ASSERT_EQ(all[s * 64 + i], r0[s * 32 + i]);
      ASSERT_EQ(all[s * 64 + 32 + i], r1[s * 32 + i]);
    }
}

// Rank r's lanes are one stretch of the epoch's chunk list: over an epoch it draws from about
// 1/W of the chunks (its share, plus at most the two it shares with a neighbour).
TEST(ShardPlanTest, EachRankDrawsFromAboutItsShareOfTheChunks) {
  const int64_t n = 60000, rows = 256;
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < n; i += rows) starts.push_back(i);
  starts.push_back(n);
  const int64_t chunks = static_cast<int64_t>(starts.size()) - 1;
  for (int ranks : {1, 2, 3, 8}) {
    const ShardPlan plan(starts, ranks, 32, 7, true);
    for (int r = 0; r < ranks; ++r) {
      std::set<int64_t> touched;
      for (uint32_t s : plan.RankSamples(r, 4)) touched.insert(s / rows);
      EXPECT_LE(static_cast<int64_t>(touched.size()), (chunks + ranks - 1) / ranks + 2)
          << "rank " << r << " of " << ranks;
    }
  }
}

// Every global batch mixes the data: its 64 samples come from (nearly) 64 different chunks.
TEST(ShardPlanTest, AGlobalBatchDrawsFromManyChunks) {
  std::vector<int64_t> starts;
  for (int64_t i = 0; i <= 60000; i += 250) starts.push_back(i);
  const ShardPlan plan(starts, 2, 32, 7, true);
  const auto order = plan.GlobalOrder(1, 64);
  for (int64_t s = 0; s < 900; s += 97) {
    std::set<int64_t> chunks;
    for (int i = 0; i < 64; ++i) chunks.insert(order[s * 64 + i] / 250);
    EXPECT_GE(chunks.size(), 62u) << "batch " << s;
  }
}

// A checkpoint from before convoy 0.2 stores no layout (0): its epoch continues in the plain
// Fisher-Yates order those versions used.
TEST(ShardPlanTest, CheckpointsBefore02KeepThePlainShuffle) {
  const ShardPlan plan(std::vector<int64_t>{0, 256, 512, 700}, 2, 16, 9, true);
  for (uint64_t epoch : {0u, 5u}) EXPECT_EQ(plan.GlobalOrder(epoch, 0), EpochOrder(700, 9, epoch, true));
}

TEST(ShardPlanTest, EpochsDiffer) {
  const ShardPlan plan(500, 2, 10, 1, true);
  EXPECT_NE(plan.RankSamples(0, 0), plan.RankSamples(0, 1));
}

}  // namespace
}  // namespace convoy
