// Checkpoints read from outside convoy: `convoy inspect --json` for scripts, and
// launch/read_checkpoint.py (plain Python: no convoy, protobuf or numpy) decoding the documented
// layout to the same parameters, shapes and norms; a damaged file is refused by both.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include "launch/json_value.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

TEST(CheckpointReaderTest, PythonReaderAndInspectJsonAgreeOnEveryParameter) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 320, 1).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  // Adam: the file holds a second moment after the momentum, which the reader must step over.
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\n"
                     "max_iter: 6\ndisplay: 3\nseed: 2\ntype: ADAM\nbase_lr: 0.001\n");
  const auto train = testing::Run(testing::ConvoyBinary() + " train --solver " + (dir / "solver.prototxt") +
                                  " --run-dir " + (dir / "run"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string ckpt = dir / "run/checkpoints/ckpt-6.pb";

  const auto inspect = testing::Run(testing::ConvoyBinary() + " inspect --json " + ckpt + " 2>/dev/null");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  const auto json = ParseJson(inspect.output);
  ASSERT_TRUE(json.ok()) << json.status().message() << "\n" << inspect.output;
  EXPECT_EQ(json->Number("iteration"), 6);
  EXPECT_EQ(json->String("checksum"), "ok");
  EXPECT_EQ(json->String("solver_type"), "ADAM");

  const auto read = testing::Run("python3 " + std::string(CONVOY_SOURCE_DIR) + "/launch/read_checkpoint.py " + ckpt);
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_NE(read.output.find("net 'small', iteration 6"), std::string::npos) << read.output;
  std::map<std::string, std::pair<double, double>> python;  // name -> (norm, momentum norm)
  std::istringstream lines(read.output);
  std::string line;
  std::getline(lines, line);
  for (std::string name, shape; lines >> name >> shape;) lines >> python[name].first >> python[name].second;

  const JsonValue* params = json->Find("params");
  ASSERT_NE(params, nullptr);
  ASSERT_EQ(params->items.size(), 6u);  // conv1, ip1, ip2: weights and biases
  ASSERT_EQ(python.size(), params->items.size()) << read.output;
  for (const JsonValue& p : params->items) {
    const auto found = python.find(p.String("name"));
    ASSERT_NE(found, python.end()) << p.String("name");
    EXPECT_GT(p.Number("l2_norm"), 0);
    EXPECT_NEAR(found->second.first, p.Number("l2_norm"), 1e-6 * p.Number("l2_norm")) << p.String("name");
    EXPECT_NEAR(found->second.second, p.Number("momentum_norm"), 1e-6 * p.Number("momentum_norm") + 1e-12)
        << p.String("name");
  }

  std::string damaged = testing::ReadFile(ckpt);
  damaged[damaged.size() / 2] ^= 0x01;
  testing::WriteFile(dir / "damaged.pb", damaged);
  const auto bad_read =
      testing::Run("python3 " + std::string(CONVOY_SOURCE_DIR) + "/launch/read_checkpoint.py " + (dir / "damaged.pb"));
  EXPECT_EQ(bad_read.exit_code, 2) << bad_read.output;
  EXPECT_NE(bad_read.output.find("checksum mismatch"), std::string::npos) << bad_read.output;
  const auto bad_inspect = testing::Run(testing::ConvoyBinary() + " inspect --json " + (dir / "damaged.pb"));
  EXPECT_EQ(bad_inspect.exit_code, 2) << bad_inspect.output;
  EXPECT_NE(bad_inspect.output.find("checksum mismatch"), std::string::npos) << bad_inspect.output;
}

}  // namespace
}  // namespace convoy
