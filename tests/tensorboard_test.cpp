// TensorBoard: `convoy train --tensorboard` writes event files that TensorBoard's own reader
// (EventAccumulator, which checks every record's CRCs) reads back as exactly the numbers of
// metrics.jsonl, training and test, each at its iteration; and every metrics line carries its time.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "launch/tensorboard_writer.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

const std::string kPython = std::string(CONVOY_SOURCE_DIR) + "/.venv-tools/bin/python";

// The check values of the CRC-32C standard (RFC 3720, B.4) and TFRecord's mask.
TEST(TensorBoardWriterTest, Crc32cMatchesTheStandardsCheckValues) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  const uint32_t crc = Crc32c("123456789", 9);
  EXPECT_EQ(MaskedCrc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TensorBoardTest, TensorBoardReadsBackEveryNumberOfMetricsJsonl) {
  if (testing::Run(kPython + " -c 'import tensorboard'").exit_code != 0)
    GTEST_SKIP() << "tensorboard is not installed in " << kPython << " (launch/setup installs it from PyPI)";
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 640, 2).ok());
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "test", 200, 1, false).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\ntest_data: \"test\"\nbatch_size: 32\n"
                     "max_iter: 12\ndisplay: 3\ntest_interval: 6\nseed: 4\n");
  const auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + (dir / "solver.prototxt") + " --run-dir " +
                              (dir / "run") + " --tensorboard");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto read =
      testing::Run(kPython + " " + CONVOY_SOURCE_DIR + "/tests/read_tensorboard.py " + (dir / "run/tensorboard"));
  ASSERT_EQ(read.exit_code, 0) << read.output;
  std::map<std::pair<std::string, int>, double> board;  // (tag, step) -> value
  std::istringstream lines(read.output);
  for (std::string tag; lines >> tag;) {
    int step = 0;
    double value = 0;
    lines >> step >> value;
    board[{tag, step}] = value;
  }

  // Every number on every metrics line with an iteration, in TensorBoard at that step.
  std::istringstream metrics(testing::ReadFile(dir / "run/metrics.jsonl"));
  const std::regex field("\"(\\w+)\": (-?[0-9.e+-]+)");
  const std::regex iter_field("\"iter\": (\\d+)");
  size_t compared = 0, lines_with_time = 0, metric_lines = 0;
  std::map<std::string, int> splits;
  for (std::string line; std::getline(metrics, line);) {
    ++metric_lines;
    if (line.find("\"time\": ") != std::string::npos) ++lines_with_time;
    std::smatch m;
    if (!std::regex_search(line, m, iter_field)) continue;
    const int step = std::stoi(m[1]);
    const std::string split = line.find("\"split\": \"test\"") != std::string::npos ? "test" : "train";
    ++splits[split];
    for (auto it = std::sregex_iterator(line.begin(), line.end(), field); it != std::sregex_iterator(); ++it) {
      const std::string name = (*it)[1];
      if (name == "iter" || name == "time") continue;
      const double logged = std::stod((*it)[2]);
      const auto found = board.find({split + "/" + name, step});
      ASSERT_NE(found, board.end()) << split << "/" << name << " at step " << step << "\n" << read.output;
      EXPECT_NEAR(found->second, logged, 1e-5 * std::max(1.0, std::fabs(logged))) << split << "/" << name;
      ++compared;
    }
  }
  EXPECT_EQ(splits["train"], 4);  // iterations 3, 6, 9, 12
  EXPECT_EQ(splits["test"], 2);   // 6 and 12
  EXPECT_EQ(compared, board.size()) << "TensorBoard holds scalars metrics.jsonl does not";
  EXPECT_EQ(lines_with_time, metric_lines);
  std::printf("%zu scalars read back by TensorBoard's EventAccumulator, all equal to metrics.jsonl\n", compared);
}

}  // namespace
}  // namespace convoy
