// ShardPlan's properties over many (samples, ranks, batch, epoch, seed): within an epoch no
// sample is used twice across all ranks, every rank has the same number of steps, only the
// remainder (fewer than one global batch) is left out, and the plan is deterministic.
#include "io/shard_plan.h"

#include <gtest/gtest.h>

#include <vector>

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

TEST(ShardPlanTest, EpochsDiffer) {
  const ShardPlan plan(500, 2, 10, 1, true);
  EXPECT_NE(plan.RankSamples(0, 0), plan.RankSamples(0, 1));
}

}  // namespace
}  // namespace convoy
