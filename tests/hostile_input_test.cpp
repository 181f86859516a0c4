// Nets, data and checkpoints may come from others: what a hostile or careless one can make convoy
// do is refused by name, with exit code 2, before any memory is touched (issue 20's probe).
#include <gtest/gtest.h>

#include "core/net.h"
#include "core/text_format.h"
#include "io/dataset.h"
#include "launch/evaluate.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

class HostileInputTest : public ::testing::Test {
 protected:
  HostileInputTest() { EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 64, 1).ok()); }
  // The small net with `extra` layers after its loss, checked against the 10-class data.
  Status BuildAndCheck(const std::string& extra) {
    proto::NetSpec spec;
    RETURN_IF_ERROR(ParseTextProto(testing::SmallNetText() + extra, "net.prototxt", &spec));
    ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(spec, CpuBackend(), 4, 1));
    ASSIGN_OR_RETURN(Dataset data, Dataset::Open(dir_ / "train"));
    return CheckDatasetFitsNet(data, *net);
  }
  testing::TempDir dir_;
};

// A second head scoring 3 classes would index its 3 scores by labels up to 9, reading and
// writing past them.
TEST_F(HostileInputTest, AHeadWithFewerScoresThanClassesIsRefused) {
  const Status s = BuildAndCheck(
      "layer { name: \"ip_small\" type: \"InnerProduct\" bottom: \"ip1\" top: \"small\" "
      "inner_product_param { num_output: 3 } }\n"
      "layer { name: \"acc_small\" type: \"Accuracy\" bottom: \"small\" bottom: \"label\" top: \"acc_small\" }\n"
      "layer { name: \"loss_small\" type: \"SoftmaxWithLoss\" bottom: \"small\" bottom: \"label\" top: \"l2\" }");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.ExitCode(), 2);
  EXPECT_NE(s.message().find("layer 'acc_small' (Accuracy) scores 3 classes but the dataset"), std::string::npos)
      << s.message();
}

TEST_F(HostileInputTest, AHeadWhoseLabelsAreNotTheDataLayersIsRefused) {
  // One value per sample, so the shapes fit; the values are scores, not class numbers.
  const Status s = BuildAndCheck(
      "layer { name: \"ip_one\" type: \"InnerProduct\" bottom: \"ip1\" top: \"fake\" "
      "inner_product_param { num_output: 1 } }\n"
      "layer { name: \"acc_wild\" type: \"Accuracy\" bottom: \"ip2\" bottom: \"fake\" top: \"acc_wild\" }");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("layer 'acc_wild' (Accuracy) reads its labels from 'fake', expected the Data layer's "
                             "'label'"),
            std::string::npos)
      << s.message();
}

TEST_F(HostileInputTest, ExtraHeadsWithEnoughScoresAreFine) {
  EXPECT_TRUE(BuildAndCheck("layer { name: \"acc_top3\" type: \"Accuracy\" bottom: \"ip2\" bottom: \"label\" "
                            "top: \"acc3\" accuracy_param { top_k: 3 } }")
                  .ok());
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// Spec integers past what convoy takes, and sizes past what a tensor may hold, are refused
// naming the field or the blob (before: SIGSEGV, heap overflow, or training on garbage).
TEST(HostileSpecTest, HugeSizesAreRefusedByName) {
  struct Row {
    std::string from, to, expected;
  };
  const std::string net = testing::SmallNetText();
  const Row rows[] = {
      {"num_output: 8 kernel_size: 5", "num_output: 4294967295 kernel_size: 5",
       "convolution_param.num_output must be in [1, 16777216], found 4294967295"},
      {"num_output: 8 kernel_size: 5", "num_output: 8 kernel_size: 5 pad: 4000000000",
       "convolution_param.pad must be in [0, 16777216], found 4000000000"},
      {"pool: MAX kernel_size: 2 stride: 2", "pool: MAX kernel_size: 4000000000 stride: 2",
       "pooling_param.kernel_size must be in [1, 16777216], found 4000000000"},
      {"channels: 1 height: 28 width: 28", "channels: 16777216 height: 16777216 width: 28",
       "layer 0 'data' (Data): its top 'data' would be 4x16777216x16777216x28, more than the"},
      {"num_output: 32 weight_filler", "num_output: 16000000 weight_filler",
       "parameter 'ip1/0' 16000000x1152 brings the parameters past the"},
      {"top: \"accuracy\"", "top: \"accuracy\" accuracy_param { top_k: 4294967295 }",
       "accuracy_param.top_k must be in [1, 10], found 4294967295"},
      {"name: \"small\"",
       "name: \"small\"\nlayer { name: \"cat\" type: \"Concat\" bottom: \"conv1\" bottom: \"conv1\" top: \"cat\" "
       "concat_param { axis: 4294967295 } }",
       "concat_param.axis must be in [0, 7], found 4294967295"},
  };
  for (const Row& row : rows) {
    std::string text = testing::Replace(net, row.from, row.to);
    if (row.from == "name: \"small\"") text = net + row.to.substr(row.from.size() + 1);  // appended after the loss
    ASSERT_NE(text, net) << row.from;
    proto::NetSpec spec;
    ASSERT_TRUE(ParseTextProto(text, "net.prototxt", &spec).ok()) << row.to;
    auto built = Net::Build(spec, CpuBackend(), 4, 1);
    ASSERT_FALSE(built.ok()) << row.to;
    EXPECT_EQ(built.status().ExitCode(), 2) << built.status().message();
    EXPECT_NE(built.status().message().find(row.expected), std::string::npos)
        << row.to << "\n  gave: " << built.status().message();
  }
}

}  // namespace
}  // namespace convoy
