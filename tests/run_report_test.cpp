// Watching a run: metrics.jsonl's lines read back as JSON (the run's start line with its facts,
// rank_count and time on every line, per-class accuracy and the confusion matrix on test lines,
// each rank's step split on training lines), and `convoy report`'s page, rendered by headless
// Chromium to a picture whose SVG charts are all there, across a resumed run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <regex>
#include <sstream>

#include "io/image_codec.h"
#include "launch/json_value.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

TEST(JsonValueTest, ParsesWhatMetricsLinesHold) {
  const auto v = ParseJson(R"( {"a": -1.5e3, "b": [1, 2, null], "c": "x\"y\\z\u00e9", "d": {"e": true}, "f": false} )");
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->Number("a"), -1500);
  EXPECT_EQ(v->Numbers("b"), (std::vector<double>{1, 2, 0}));
  EXPECT_EQ(v->String("c"), "x\"y\\z\xc3\xa9");
  ASSERT_NE(v->Find("d"), nullptr);
  EXPECT_TRUE(v->Find("d")->Find("e")->boolean);
  EXPECT_FALSE(v->Find("f")->boolean);
  EXPECT_EQ(v->Find("missing"), nullptr);
}

TEST(JsonValueTest, ErrorsSayWhereAndWhat) {
  const auto cut = ParseJson(R"({"iter": 40, "loss": 0.)");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("expected"), std::string::npos) << cut.status().message();
  const auto trailing = ParseJson(R"({"a": 1} x)");
  ASSERT_FALSE(trailing.ok());
  EXPECT_NE(trailing.status().message().find("character 10"), std::string::npos) << trailing.status().message();
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "+1", "\"open", "tru", "{\"a\": 1,}"})
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  // Deep nesting is refused, not recursed into until the stack runs out.
  EXPECT_FALSE(ParseJson(std::string(100000, '[')).ok());
}

class RunReportTest : public ::testing::Test {
 protected:
  RunReportTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 2).ok());
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "test", 200, 1, false).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  }
  testing::CommandResult Train(int max_iter, const std::string& flags, const std::string& launcher = "") {
    const std::string solver = dir_ / ("solver" + std::to_string(max_iter) + ".prototxt");
    testing::WriteFile(solver,
                       "net: \"net.prototxt\"\ntrain_data: \"train\"\ntest_data: \"test\"\nbatch_size: 16\n"
                       "max_iter: " +
                           std::to_string(max_iter) + "\ndisplay: 4\ntest_interval: 12\nsnapshot: 12\nseed: 3\n");
    return testing::Run(launcher + testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " +
                        (dir_ / "run") + " " + flags);
  }
  std::vector<JsonValue> MetricsLines() {
    std::vector<JsonValue> lines;
    std::istringstream in(testing::ReadFile(dir_ / "run/metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      auto v = ParseJson(line);
      EXPECT_TRUE(v.ok()) << line << ": " << v.status().message();
      if (v.ok()) lines.push_back(std::move(*v));
    }
    return lines;
  }
  testing::TempDir dir_;
};

// Two ranks under mpirun, then a resumption on one: every line is JSON with rank_count and time.
TEST_F(RunReportTest, MetricsLinesCarryTheRunsFactsAndPerClassResults) {
  auto first = Train(12, "--threads 1", testing::Mpirun(2));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto resumed = Train(24, "--resume latest");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const std::vector<JsonValue> lines = MetricsLines();
  std::vector<const JsonValue*> starts, tests, trains;
  for (const JsonValue& line : lines) {
    EXPECT_GT(line.Number("time"), 1.7e9);
    EXPECT_GE(line.Number("rank_count"), 1);
    if (line.String("event") == "start")
      starts.push_back(&line);
    else if (line.String("split") == "test")
      tests.push_back(&line);
    else if (line.Find("iter"))
      trains.push_back(&line);
  }
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_NE(starts[0]->String("command").find("train --solver"), std::string::npos);
  EXPECT_FALSE(starts[0]->String("version").empty());
  EXPECT_EQ(starts[0]->String("net_hash").size(), 16u);
  EXPECT_EQ(starts[0]->String("net_hash"), starts[1]->String("net_hash"));        // the same net
  EXPECT_NE(starts[0]->String("solver_hash"), starts[1]->String("solver_hash"));  // max_iter changed
  EXPECT_EQ(starts[0]->String("launcher"), "mpirun");
  EXPECT_EQ(starts[0]->Number("rank_count"), 2);
  EXPECT_EQ(starts[1]->Number("rank_count"), 1);
  EXPECT_EQ(starts[1]->Number("start_iter"), 12);
  EXPECT_NE(starts[0]->Find("class_names"), nullptr);  // empty: the fixture's manifest names no classes
  // Each training window: the rank mean and each rank's own split.
  ASSERT_EQ(trains.size(), 6u);
  for (const JsonValue* t : trains) {
    const std::vector<double> compute = t->Numbers("rank_compute_ms");
    ASSERT_EQ(compute.size(), static_cast<size_t>(t->Number("rank_count")));
    const double mean = std::accumulate(compute.begin(), compute.end(), 0.0) / compute.size();
    EXPECT_NEAR(t->Number("compute_ms"), mean, 1e-3 * std::max(1.0, mean));
    EXPECT_EQ(t->Numbers("rank_data_wait_ms").size(), compute.size());
    EXPECT_EQ(t->Numbers("rank_comm_exposed_ms").size(), compute.size());
  }
  // Test lines: the confusion matrix accounts for every sample; its diagonal is the accuracy,
  // and each class's accuracy is its row's diagonal share.
  ASSERT_EQ(tests.size(), 2u);
  for (const JsonValue* t : tests) {
    const std::vector<double> confusion = t->Numbers("confusion"), per_class = t->Numbers("class_accuracy");
    ASSERT_EQ(confusion.size(), 100u);
    ASSERT_EQ(per_class.size(), 10u);
    EXPECT_EQ(std::accumulate(confusion.begin(), confusion.end(), 0.0), t->Number("samples"));
    double diagonal = 0;
    for (int c = 0; c < 10; ++c) {
      diagonal += confusion[c * 11];
      const double row = std::accumulate(confusion.begin() + c * 10, confusion.begin() + c * 10 + 10, 0.0);
      EXPECT_NEAR(per_class[c], row > 0 ? confusion[c * 11] / row : 0, 1e-5);
    }
    EXPECT_NEAR(diagonal / t->Number("samples"), t->Number("accuracy"), 1e-5);
  }
}

// Without an Accuracy layer the training lines still carry the accuracy: top-1 of the scores the
// loss saw, the same numbers an Accuracy layer gives (it changes nothing else in training).
TEST_F(RunReportTest, TrainingAccuracyWithoutAnAccuracyLayerIsTopOneOfTheScores) {
  auto accuracies = [&](const std::string& run) {
    std::vector<double> found;
    std::istringstream in(testing::ReadFile(dir_ / run + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);)
      if (auto v = ParseJson(line); v.ok() && v->Find("iter") && v->String("split").empty())
        found.push_back(v->Number("accuracy", -1));
    return found;
  };
  const std::string solver = dir_ / "solver.prototxt";
  testing::WriteFile(solver,
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\nmax_iter: 12\n"
                     "display: 4\nseed: 3\n");
  auto with = testing::Run(testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " + (dir_ / "with"));
  ASSERT_EQ(with.exit_code, 0) << with.output;
  const std::string accuracy_layer =
      "layer { name: \"accuracy\" type: \"Accuracy\" bottom: \"ip2\" bottom: \"label\" top: \"accuracy\" }";
  ASSERT_NE(testing::SmallNetText().find(accuracy_layer), std::string::npos);
  testing::WriteFile(dir_ / "net.prototxt", testing::Replace(testing::SmallNetText(), accuracy_layer, ""));
  auto without =
      testing::Run(testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " + (dir_ / "without"));
  ASSERT_EQ(without.exit_code, 0) << without.output;
  EXPECT_NE(without.output.find("  accuracy 0."), std::string::npos) << without.output;
  const std::vector<double> a = accuracies("with"), b = accuracies("without");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_GE(b[i], 0.0);
    EXPECT_NEAR(a[i], b[i], 1e-6) << "window " << i;
  }
}

// The report of a resumed run, drawn by Chromium: every chart an <svg>, each curve a polyline with
// a point per logged line, the confusion matrix's cells, and a picture that is not blank.
TEST_F(RunReportTest, ChromiumDrawsEveryChartOfAResumedRun) {
  if (testing::Run("command -v chromium").exit_code != 0)
    GTEST_SKIP() << "chromium is not installed (launch/setup installs Debian's chromium package)";
  ASSERT_EQ(Train(12, "").exit_code, 0);
  const auto resumed = Train(24, "--resume latest");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto report = testing::Run(testing::ConvoyBinary() + " report " + (dir_ / "run"));
  ASSERT_EQ(report.exit_code, 0) << report.output;
  EXPECT_NE(report.output.find("6 training lines, 2 tests, 1 resumption(s)"), std::string::npos) << report.output;
  const std::string page = dir_ / "run/report.html";
  const std::string chromium = "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars ";
  const auto dom = testing::Run(chromium + "--dump-dom file://" + page + " 2>/dev/null");
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  auto count = [&](const std::string& pattern) {
    const std::regex re(pattern);
    return std::distance(std::sregex_iterator(dom.output.begin(), dom.output.end(), re), std::sregex_iterator());
  };
  // Loss, accuracy, lr, images/s, the step split, per-rank bars, 3 per-rank charts, per-class, confusion.
  EXPECT_EQ(count("<svg class=\"chart\""), 11);
  EXPECT_EQ(count("<polyline class=\"series\" data-name=\"training\" data-points=\"6\""), 2);  // loss, accuracy
  EXPECT_EQ(count("<polyline class=\"series\" data-name=\"test\" data-points=\"2\""), 2);
  EXPECT_EQ(count("<line class=\"resume\""), 8);  // the resumption, on every chart over iterations
  EXPECT_EQ(count("<rect class=\"cell\""), 100);
  EXPECT_GE(count("<rect class=\"bar\""), 10 + 3);
  EXPECT_NE(dom.output.find("resumed"), std::string::npos);

  const std::string png = dir_ / "report.png";
  const auto shot =
      testing::Run(chromium + "--window-size=1250,3000 --screenshot=" + png + " file://" + page + " 2>&1");
  ASSERT_EQ(shot.exit_code, 0) << shot.output;
  const auto image = ReadImage(png);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(image->width, 1250);
  // Not blank: a good share of the pixels is ink (not the white page).
  size_t ink = 0;
  for (size_t i = 0; i + 2 < image->pixels.size(); i += 3)
    if (image->pixels[i] + image->pixels[i + 1] + image->pixels[i + 2] < 600) ++ink;
  EXPECT_GT(ink, image->pixels.size() / 3 / 50) << "the picture is nearly blank";
}

TEST_F(RunReportTest, BadInputIsRefusedClearly) {
  const std::string convoy = testing::ConvoyBinary();
  auto missing = testing::Run(convoy + " report " + (dir_ / "nowhere"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("no such run folder"), std::string::npos) << missing.output;
  fs::create_directories(dir_ / "empty");
  auto empty = testing::Run(convoy + " report " + (dir_ / "empty"));
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.output.find("has no metrics.jsonl"), std::string::npos) << empty.output;
  // Only a start line (a run killed before its first window): nothing to draw yet, and no page.
  fs::create_directories(dir_ / "early");
  fs::create_directories(dir_ / "damaged");
  testing::WriteFile(dir_ / "early/metrics.jsonl", "{\"event\": \"start\", \"rank_count\": 1, \"time\": 1.0}\n");
  auto early = testing::Run(convoy + " report " + (dir_ / "early"));
  EXPECT_EQ(early.exit_code, 2);
  EXPECT_NE(early.output.find("no training or test line yet"), std::string::npos) << early.output;
  EXPECT_FALSE(fs::exists(dir_ / "early/report.html"));
  // A damaged line is named and skipped; a half-written last line (a run in progress) is not read.
  testing::WriteFile(dir_ / "damaged/metrics.jsonl",
                     "{\"iter\": 4, \"loss\": 2.0, \"rank_count\": 1, \"time\": 1.0}\nnot json\n"
                     "{\"iter\": 8, \"loss\": 1.0, \"rank_count\": 1, \"time\": 2.0}\n{\"iter\": 12, \"lo");
  auto damaged = testing::Run(convoy + " report " + (dir_ / "damaged"));
  EXPECT_EQ(damaged.exit_code, 0) << damaged.output;
  EXPECT_NE(damaged.output.find("2 training lines"), std::string::npos) << damaged.output;
  EXPECT_NE(testing::ReadFile(dir_ / "damaged/report.html").find("line 2: character 1"), std::string::npos);
  auto nowhere = testing::Run(convoy + " report " + (dir_ / "damaged") + " --out " + (dir_ / "no/such/dir/r.html"));
  EXPECT_EQ(nowhere.exit_code, 2) << nowhere.output;
  EXPECT_NE(nowhere.output.find("no/such/dir"), std::string::npos) << nowhere.output;
  auto two = testing::Run(convoy + " report " + (dir_ / "damaged") + " " + (dir_ / "empty"));
  EXPECT_EQ(two.exit_code, 2);
}

}  // namespace
}  // namespace convoy
