// convoy train --trace: a Chrome trace of a window of steps, from every rank. Valid JSON; each
// rank's training thread a properly nested series of begin/end pairs (a step holding its data
// wait, every layer's forward and backward, the wait for the all-reduces and the update); each
// bucket's all-reduce a begin/end pair that starts once backward has produced its layers, in the
// order backward produced them. And bad --trace input refused before anything is written.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "launch/json_value.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

class StepTraceTest : public ::testing::Test {
 protected:
  StepTraceTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 2).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
    // 4 KiB buckets: the small net's layers fall into several buckets.
    testing::WriteFile(dir_ / "solver.prototxt",
                       "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\nmax_iter: 12\n"
                       "display: 4\nseed: 3\nbucket_mb: 0.004\n");
  }
  testing::CommandResult Train(const std::string& flags, const std::string& launcher = "") {
    return testing::Run(launcher + testing::ConvoyBinary() + " train --solver " + (dir_ / "solver.prototxt") +
                        " --run-dir " + (dir_ / "run") + " " + flags);
  }
  testing::TempDir dir_;
};

struct Event {
  std::string ph, name;
  int pid = -1, tid = -1;
  double ts = 0;
  double id = -1;
  int step = -1, bucket = -1;
};

std::vector<Event> ReadTrace(const std::string& path) {
  const auto json = ParseJson(testing::ReadFile(path));
  EXPECT_TRUE(json.ok()) << json.status().message();
  std::vector<Event> events;
  if (!json.ok()) return events;
  const JsonValue* list = json->Find("traceEvents");
  EXPECT_TRUE(list && list->kind == JsonValue::Kind::kArray);
  if (!list) return events;
  for (const JsonValue& e : list->items) {
    Event ev{
        e.String("ph"), e.String("name"),  static_cast<int>(e.Number("pid", -1)), static_cast<int>(e.Number("tid", -1)),
        e.Number("ts"), e.Number("id", -1)};
    if (const JsonValue* args = e.Find("args")) {
      ev.step = static_cast<int>(args->Number("step", -1));
      ev.bucket = static_cast<int>(args->Number("bucket", -1));
    }
    events.push_back(ev);
  }
  return events;
}

TEST_F(StepTraceTest, EveryRanksStepIsNestedPairsAndBucketsFollowBackward) {
  const auto r = Train("--trace " + (dir_ / "trace.json") + " --trace-steps 4:3 --threads 1", testing::Mpirun(2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trace: " + (dir_ / "trace.json") + " (steps 4-6, 2 rank(s), written in "), std::string::npos)
      << r.output;
  const std::vector<Event> events = ReadTrace(dir_ / "trace.json");
  ASSERT_FALSE(events.empty());
  for (int rank = 0; rank < 2; ++rank) {
    // The training thread: begin/end pairs, in time order, each end closing the innermost open
    // span of the same name.
    std::vector<const Event*> open;
    std::map<std::string, int> spans;
    double last_ts = 0;
    std::set<std::string> process_names;
    for (const Event& e : events) {
      if (e.pid != rank) continue;
      if (e.ph == "M" && e.name == "process_name") process_names.insert(e.name);
      if (e.tid != 1 || (e.ph != "B" && e.ph != "E")) continue;
      EXPECT_GE(e.ts, last_ts) << "rank " << rank << ": " << e.name << " out of time order";
      last_ts = e.ts;
      if (e.ph == "B") {
        open.push_back(&e);
        continue;
      }
      ASSERT_FALSE(open.empty()) << "rank " << rank << ": an end without a begin: " << e.name;
      EXPECT_EQ(open.back()->name, e.name) << "rank " << rank << ": spans not nested";
      ++spans[e.name];
      open.pop_back();
    }
    EXPECT_TRUE(open.empty()) << "rank " << rank << ": " << open.size() << " span(s) never ended";
    EXPECT_EQ(process_names.size(), 1u);
    for (const char* step : {"step 4", "step 5", "step 6"}) EXPECT_EQ(spans[step], 1) << step;
    EXPECT_EQ(spans["step 3"], 0);
    EXPECT_EQ(spans["step 7"], 0);
    for (const char* part : {"data wait", "wait for all-reduce", "update"}) EXPECT_EQ(spans[part], 3) << part;
    int forward = 0, backward = 0;
    for (const auto& [name, n] : spans) {
      const bool layer = name.rfind("forward ", 0) == 0 || name.rfind("backward ", 0) == 0;
      if (layer) {
        EXPECT_EQ(n, 3) << name;  // once a step
      }
      (name[0] == 'f' ? forward : backward) += layer ? n : 0;
    }
    EXPECT_GE(forward, 3 * 5);
    EXPECT_GE(backward, 3 * 4);

    // All-reduces: one begin/end pair per bucket and step, ends after begins, and for each step
    // the buckets begin in bucket order (last layers first, as backward produces them), each after
    // the backward of the layers it holds.
    std::map<double, const Event*> begins;
    std::map<int, std::vector<const Event*>> by_step;
    int ends = 0;
    for (const Event& e : events) {
      if (e.pid != rank || e.tid != 2) continue;
      if (e.ph == "b") {
        EXPECT_TRUE(begins.emplace(e.id, &e).second) << "two begins with id " << e.id;
        by_step[e.step].push_back(&e);
      } else if (e.ph == "e") {
        ++ends;
        ASSERT_TRUE(begins.count(e.id)) << "an end without a begin: " << e.name;
        EXPECT_GE(e.ts, begins[e.id]->ts) << e.name;
        EXPECT_EQ(e.name, begins[e.id]->name);
      }
    }
    EXPECT_EQ(ends, static_cast<int>(begins.size()));
    ASSERT_EQ(by_step.size(), 3u);
    for (const auto& [step, buckets] : by_step) {
      ASSERT_GE(buckets.size(), 2u) << "the test wants several buckets";
      for (size_t b = 0; b < buckets.size(); ++b) {
        EXPECT_EQ(buckets[b]->bucket, static_cast<int>(b));
        if (b > 0) {
          EXPECT_GE(buckets[b]->ts, buckets[b - 1]->ts) << "bucket " << b << " began before bucket " << b - 1;
        }
        // "bucket 1 (conv2, conv1)": ready once the backward of its last-listed layer has ended.
        const std::string& name = buckets[b]->name;
        const size_t comma = name.rfind(", ");
        const size_t from = comma == std::string::npos ? name.find('(') + 1 : comma + 2;
        const std::string earliest = name.substr(from, name.size() - 1 - from);
        const Event* step_begin = nullptr;
        for (const Event& e : events)
          if (e.pid == rank && e.ph == "B" && e.name == "step " + std::to_string(step)) step_begin = &e;
        ASSERT_NE(step_begin, nullptr);
        const Event* layer_end = nullptr;
        for (const Event& e : events)
          if (e.pid == rank && e.ph == "E" && e.name == "backward " + earliest && e.ts >= step_begin->ts &&
              (!layer_end || e.ts < layer_end->ts))
            layer_end = &e;
        ASSERT_NE(layer_end, nullptr) << "no backward of " << earliest << " in step " << step;
        EXPECT_GE(buckets[b]->ts, layer_end->ts) << name << " began before its layers' backward ended";
      }
    }
  }
}

TEST_F(StepTraceTest, AWindowPastTheEndIsWrittenWhenTheRunEnds) {
  const auto r = Train("--trace " + (dir_ / "t.json") + " --trace-steps 10:50");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(steps 10-11, 1 rank(s), written in "), std::string::npos) << r.output;
  int steps = 0;
  for (const Event& e : ReadTrace(dir_ / "t.json")) steps += e.ph == "B" && e.name.rfind("step ", 0) == 0;
  EXPECT_EQ(steps, 2);
}

TEST_F(StepTraceTest, BadTraceInputIsRefusedBeforeAnythingIsWritten) {
  auto missing = Train("--trace " + (dir_ / "no/such/folder/t.json"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("no/such/folder does not exist"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(dir_ / "run/metrics.jsonl"));
  auto folder = Train("--trace " + (dir_ / ""));
  EXPECT_EQ(folder.exit_code, 2) << folder.output;
  for (const char* window : {"4", "4:0", "-1:3", "a:b", "4:3x"}) {
    auto bad = Train("--trace " + (dir_ / "t.json") + " --trace-steps " + window);
    EXPECT_EQ(bad.exit_code, 2) << window << ": " << bad.output;
    EXPECT_NE(bad.output.find("FIRST:COUNT"), std::string::npos) << bad.output;
  }
  auto alone = Train("--trace-steps 4:3");
  EXPECT_EQ(alone.exit_code, 2) << alone.output;
  EXPECT_FALSE(fs::exists(dir_ / "run/metrics.jsonl"));
  // A run folder that cannot be created (under /proc): exit 2 naming it.
  auto unwritable = testing::Run(testing::ConvoyBinary() + " train --solver " + (dir_ / "solver.prototxt") +
                                 " --run-dir /proc/convoy-run");
  EXPECT_EQ(unwritable.exit_code, 2) << unwritable.output;
  EXPECT_NE(unwritable.output.find("/proc/convoy-run"), std::string::npos) << unwritable.output;
}

}  // namespace
}  // namespace convoy
