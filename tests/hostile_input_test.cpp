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
