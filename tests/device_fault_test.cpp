// Device faults come back as values (Backend::TakeError), naming the failed call, instead of
// exceptions that would skip the path that ends every rank. Runs where a GPU is.
#include <gtest/gtest.h>

#include "core/backend.h"

namespace convoy {
namespace {

TEST(DeviceFaultTest, AFailedAllocationIsReturnedOnceNamingTheCall) {
  auto cuda = GetBackend("cuda");
  if (!cuda.ok()) GTEST_SKIP() << "backend cuda unavailable: " << cuda.status().message();
  Backend* backend = *cuda;
  ASSERT_TRUE(backend->TakeError().ok());
  const int64_t too_many = int64_t{1} << 42;  // 16 TiB of floats: more than any GPU holds
  float* ptr = backend->Allocate(too_many);
  EXPECT_EQ(ptr, nullptr);
  const Status fault = backend->TakeError();
  ASSERT_FALSE(fault.ok()) << "a failed cudaMalloc must be reported";
  EXPECT_EQ(fault.code(), StatusCode::kInternal);
  EXPECT_NE(fault.message().find("cudaMalloc of 17592186044416 bytes"), std::string::npos) << fault.message();
  EXPECT_NE(fault.message().find(backend->name()), std::string::npos) << fault.message();
  EXPECT_TRUE(backend->TakeError().ok()) << "a fault is handed over once";
  // The device still works after an allocation failure.
  float* small = backend->Allocate(16);
  ASSERT_NE(small, nullptr);
  backend->Fill(16, 3.f, small);
  std::vector<float> host(16);
  backend->CopyToHost(small, 16, host.data());
  backend->Free(small);
  EXPECT_EQ(host, std::vector<float>(16, 3.f));
  EXPECT_TRUE(backend->TakeError().ok());
}

TEST(DeviceFaultTest, HostBackendsHaveNone) {
  EXPECT_TRUE(CpuBackend()->TakeError().ok());
  EXPECT_TRUE(ReferenceBackend()->TakeError().ok());
}

}  // namespace
}  // namespace convoy
