// The conformance suite every Communicator passes. A test binary instantiates it with a traits
// type that provides the communicator and moves test data to and from its memory:
//
//   struct MyTraits {
//     static Communicator* Get();
//     static float* Upload(const std::vector<float>& host);   // memory the communicator takes
//     static std::vector<float> Download(const float* data, int64_t count);
//     static void Release(float* data);
//     static std::string WhyUnavailable();  // why Get() returned null (the tests then skip)
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(Mine, CommunicatorConformance, ::testing::Types<MyTraits>);
//
// Every rank of the job runs every test; values are chosen so the expected results are exact.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "distributed/communicator.h"

namespace convoy {

template <typename Traits>
class CommunicatorConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Traits::Get()) GTEST_SKIP() << Traits::WhyUnavailable();
  }
  Communicator* comm() { return Traits::Get(); }
  // Rank r's element i: small integers, so sums and averages are exact in float.
  static float Value(int rank, int64_t i) { return static_cast<float>((rank + 1) * 4 + i % 13); }
  std::vector<float> Mine(int64_t n) {
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = Value(comm()->rank(), i);
    return v;
  }
  float SumOverRanks(int64_t i) {
    float s = 0;
    for (int r = 0; r < comm()->size(); ++r) s += Value(r, i);
    return s;
  }
};

TYPED_TEST_SUITE_P(CommunicatorConformance);

TYPED_TEST_P(CommunicatorConformance, SumsAndAveragesOddLengths) {
  for (int64_t n : {1, 7, 1001, 65537}) {
    float* data = TypeParam::Upload(this->Mine(n));
    ASSERT_TRUE(this->comm()->Allreduce(data, n).ok());
    std::vector<float> sum = TypeParam::Download(data, n);
    TypeParam::Release(data);
    data = TypeParam::Upload(this->Mine(n));
    ASSERT_TRUE(this->comm()->AllreduceAverage(data, n).ok());
    std::vector<float> avg = TypeParam::Download(data, n);
    TypeParam::Release(data);
    data = TypeParam::Upload(this->Mine(n));
    ASSERT_TRUE(this->comm()->AllreduceAsync(data, n)->Wait().ok());
    std::vector<float> async_sum = TypeParam::Download(data, n);
    TypeParam::Release(data);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(sum[i], this->SumOverRanks(i)) << "length " << n << " element " << i;
      ASSERT_EQ(async_sum[i], this->SumOverRanks(i)) << "async, length " << n << " element " << i;
      ASSERT_FLOAT_EQ(avg[i], this->SumOverRanks(i) / this->comm()->size()) << "length " << n << " element " << i;
    }
  }
}

TYPED_TEST_P(CommunicatorConformance, ZeroLengthIsANoOp) {
  float* data = TypeParam::Upload({42.f});
  EXPECT_TRUE(this->comm()->Allreduce(data, 0).ok());
  EXPECT_TRUE(this->comm()->AllreduceAverage(data, 0).ok());
  EXPECT_TRUE(this->comm()->Broadcast(data, 0, 0).ok());
  EXPECT_TRUE(this->comm()->AllreduceAverageAsync(data, 0)->Wait().ok());
  EXPECT_EQ(TypeParam::Download(data, 1)[0], 42.f);
  TypeParam::Release(data);
}

TYPED_TEST_P(CommunicatorConformance, LargeBuffer) {
  const int64_t n = int64_t{16} << 20;  // 64 MiB of floats
  float* data = TypeParam::Upload(this->Mine(n));
  ASSERT_TRUE(this->comm()->AllreduceAverage(data, n).ok());
  const std::vector<float> avg = TypeParam::Download(data, n);
  TypeParam::Release(data);
  for (int64_t i = 0; i < n; i += 4099) ASSERT_FLOAT_EQ(avg[i], this->SumOverRanks(i) / this->comm()->size()) << i;
  ASSERT_FLOAT_EQ(avg[n - 1], this->SumOverRanks(n - 1) / this->comm()->size());
}

TYPED_TEST_P(CommunicatorConformance, BroadcastFromTheLastRank) {
  const int root = this->comm()->size() - 1;
  float* data = TypeParam::Upload(this->Mine(1000));
  ASSERT_TRUE(this->comm()->Broadcast(data, 1000, root).ok());
  const std::vector<float> got = TypeParam::Download(data, 1000);
  TypeParam::Release(data);
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(got[i], this->Value(root, i));
}

TYPED_TEST_P(CommunicatorConformance, AllgatherInRankOrder) {
  const int64_t n = 33;
  const int size = this->comm()->size();
  float* send = TypeParam::Upload(this->Mine(n));
  float* recv = TypeParam::Upload(std::vector<float>(n * size, -1.f));
  ASSERT_TRUE(this->comm()->Allgather(send, n, recv).ok());
  const std::vector<float> got = TypeParam::Download(recv, n * size);
  TypeParam::Release(send);
  TypeParam::Release(recv);
  for (int r = 0; r < size; ++r)
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[r * n + i], this->Value(r, i)) << "rank " << r;
}

TYPED_TEST_P(CommunicatorConformance, ManyAsyncAveragesInFlight) {
  std::vector<float*> buffers;
  std::vector<std::unique_ptr<CommRequest>> requests;
  for (int b = 0; b < 6; ++b) {
    buffers.push_back(TypeParam::Upload(this->Mine(1000 + b)));
    requests.push_back(this->comm()->AllreduceAverageAsync(buffers.back(), 1000 + b));
  }
  for (int b = 5; b >= 0; --b) ASSERT_TRUE(requests[b]->Wait().ok());  // any order of waiting
  for (int b = 0; b < 6; ++b) {
    const std::vector<float> got = TypeParam::Download(buffers[b], 1000 + b);
    TypeParam::Release(buffers[b]);
    for (int64_t i = 0; i < 1000 + b; ++i)
      ASSERT_FLOAT_EQ(got[i], this->SumOverRanks(i) / this->comm()->size()) << "buffer " << b;
  }
  EXPECT_TRUE(this->comm()->Barrier().ok());
}

REGISTER_TYPED_TEST_SUITE_P(CommunicatorConformance, SumsAndAveragesOddLengths, ZeroLengthIsANoOp, LargeBuffer,
                            BroadcastFromTheLastRank, AllgatherInRankOrder, ManyAsyncAveragesInFlight);

}  // namespace convoy
