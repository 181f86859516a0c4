#include "launch/run_report.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "launch/svg_chart.h"

namespace convoy {
namespace {

std::string Utc(double unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

ChartSeries Series(const std::string& name, const std::vector<JsonValue>& lines, const std::string& key,
                   bool dots = false) {
  ChartSeries s{name, {}, dots};
  for (const JsonValue& line : lines)
    if (const JsonValue* v = line.Find(key); v && v->kind == JsonValue::Kind::kNumber)
      s.points.emplace_back(line.Number("iter"), v->number);
  return s;
}

// Where the run was resumed: the start_iter of every start line after the first.
std::vector<double> Resumptions(const RunHistory& h) {
  std::vector<double> marks;
  for (size_t i = 1; i < h.starts.size(); ++i) marks.push_back(h.starts[i].Number("start_iter"));
  return marks;
}

// One step-time component over the run, one line per rank (up to 8 ranks; more are summarised
// as the fastest, median and slowest rank of each window).
LineChart PerRankChart(const RunHistory& h, const std::string& key, const std::string& what) {
  LineChart chart{what + " per rank", "iteration", "ms per step", {}, Resumptions(h)};
  size_t ranks = 0;
  for (const JsonValue& line : h.train) ranks = std::max(ranks, line.Numbers(key).size());
  if (ranks <= 8) {
    for (size_t r = 0; r < ranks; ++r) {
      ChartSeries s{"rank " + std::to_string(r), {}, false};
      for (const JsonValue& line : h.train)
        if (const std::vector<double> v = line.Numbers(key); r < v.size())
          s.points.emplace_back(line.Number("iter"), v[r]);
      chart.series.push_back(std::move(s));
    }
    return chart;
  }
  ChartSeries low{"fastest rank", {}, false}, mid{"median rank", {}, false}, high{"slowest rank", {}, false};
  for (const JsonValue& line : h.train) {
    std::vector<double> v = line.Numbers(key);
    if (v.empty()) continue;
    const double x = line.Number("iter");
    low.points.emplace_back(x, *std::min_element(v.begin(), v.end()));
    mid.points.emplace_back(x, Median(v));
    high.points.emplace_back(x, *std::max_element(v.begin(), v.end()));
  }
  chart.series = {low, mid, high};
  return chart;
}

// Each rank's median step split over the run's windows, as stacked bars.
StackedBars RankSplit(const RunHistory& h) {
  StackedBars bars{"Step time per rank (median of the run's windows)",
                   "ms",
                   {},
                   {"data wait", "compute", "exposed communication"},
                   {}};
  const char* keys[] = {"rank_data_wait_ms", "rank_compute_ms", "rank_comm_exposed_ms"};
  size_t ranks = 0;
  for (const JsonValue& line : h.train) ranks = std::max(ranks, line.Numbers(keys[1]).size());
  for (size_t r = 0; r < ranks && r < 64; ++r) {
    bars.rows.push_back("rank " + std::to_string(r));
    std::vector<double> row;
    for (const char* key : keys) {
      std::vector<double> values;
      for (const JsonValue& line : h.train)
        if (const std::vector<double> v = line.Numbers(key); r < v.size()) values.push_back(v[r]);
      row.push_back(Median(values));
    }
    bars.values.push_back(row);
  }
  return bars;
}

std::string Row(const std::string& name, const std::string& value) {
  return "<tr><th>" + HtmlEscape(name) + "</th><td>" + HtmlEscape(value) + "</td></tr>\n";
}

std::string Facts(const std::string& run_dir, const RunHistory& h) {
  std::string rows;
  const JsonValue* first = h.starts.empty() ? nullptr : &h.starts.front();
  const JsonValue* last = h.starts.empty() ? nullptr : &h.starts.back();
  const JsonValue* last_train = h.train.empty() ? nullptr : &h.train.back();
  const JsonValue* last_test = h.test.empty() ? nullptr : &h.test.back();
  const double max_iter = last ? last->Number("max_iter", -1) : -1;
  const double reached =
      std::max(last_train ? last_train->Number("iter") : 0, last_test ? last_test->Number("iter") : 0);
  std::string state = "at iteration " + Fixed(reached, 0);
  if (max_iter > 0) {
    state += " of " + Fixed(max_iter, 0);
    if (last_test && last_test->Number("iter") >= max_iter) state = "finished: " + state;
  }
  rows += Row("run folder", run_dir);
  rows += Row("state", state + " (when the last line was written)");
  if (first) {
    rows += Row("command", first->String("command"));
    rows += Row("convoy version", first->String("version"));
    rows += Row("net", first->String("net") + " (" + Fixed(first->Number("parameters"), 0) +
                           " parameters), spec hash " + first->String("net_hash"));
    rows += Row("solver spec hash", first->String("solver_hash"));
    rows += Row("started", Utc(first->Number("time")));
  }
  if (last) {
    std::string where;
    for (const std::string& node : last->Strings("nodes")) where += (where.empty() ? "" : "; ") + node;
    rows += Row("world", Fixed(last->Number("rank_count"), 0) + " rank(s), launcher " + last->String("launcher") +
                             ", device " + last->String("device") + ", " + Fixed(last->Number("threads"), 0) +
                             " thread(s) per rank");
    rows += Row("placement", where);
    rows += Row("batch",
                Fixed(last->Number("batch"), 0) + " per rank, " + Fixed(last->Number("global_batch"), 0) + " global");
    if (!last->String("slurm_job").empty()) rows += Row("slurm job", last->String("slurm_job"));
  }
  for (size_t i = 1; i < h.starts.size(); ++i) {
    const JsonValue& s = h.starts[i];
    rows += Row("resumed", "at iteration " + Fixed(s.Number("start_iter"), 0) + " on " + Utc(s.Number("time")) + ", " +
                               Fixed(s.Number("rank_count"), 0) + " rank(s): " + s.String("command"));
  }
  if (last_train) rows += Row("last line", Utc(last_train->Number("time")));
  if (last_test)
    rows +=
        Row("last test", "iteration " + Fixed(last_test->Number("iter"), 0) + ": accuracy " +
                             Fixed(last_test->Number("accuracy"), 4) + ", loss " + Fixed(last_test->Number("loss"), 4) +
                             " on " + Fixed(last_test->Number("samples"), 0) + " samples");
  for (const std::string& why : h.unreadable) rows += Row("unreadable", h.metrics_path + " " + why);
  return "<table class=\"facts\">\n" + rows + "</table>\n";
}

std::string LastTest(const RunHistory& h) {
  if (h.test.empty()) return "<p>No test has run yet.</p>\n";
  const JsonValue& test = h.test.back();
  std::vector<std::string> names =
      h.starts.empty() ? std::vector<std::string>{} : h.starts.back().Strings("class_names");
  const std::vector<double> accuracy = test.Numbers("class_accuracy");
  for (size_t c = names.size(); c < accuracy.size(); ++c) names.push_back("class " + std::to_string(c));
  names.resize(accuracy.size());
  StackedBars bars{
      "Accuracy per class, test at iteration " + Fixed(test.Number("iter"), 0), "", names, {"accuracy"}, {}};
  for (const double a : accuracy) bars.values.push_back({a});
  std::string out = RenderStackedBars(bars);
  if (test.Find("confusion"))
    out += RenderConfusion("Confusion matrix, test at iteration " + Fixed(test.Number("iter"), 0), names,
                           test.Numbers("confusion"));
  return out;
}

}  // namespace

std::string RenderRunReport(const std::string& run_dir, const RunHistory& h) {
  const std::vector<double> marks = Resumptions(h);
  std::string charts;
  charts += RenderLineChart({"Loss",
                             "iteration",
                             "loss",
                             {Series("training", h.train, "loss"), Series("test", h.test, "loss", true)},
                             marks});
  charts += RenderLineChart({"Accuracy",
                             "iteration",
                             "accuracy",
                             {Series("training", h.train, "accuracy"), Series("test", h.test, "accuracy", true)},
                             marks});
  charts += RenderLineChart({"Learning rate", "iteration", "learning rate", {Series("lr", h.train, "lr")}, marks});
  charts +=
      RenderLineChart({"Throughput", "iteration", "images/s", {Series("images/s", h.train, "images_per_sec")}, marks});
  charts += RenderLineChart(
      {"Step time (mean over ranks)",
       "iteration",
       "ms per step",
       {Series("whole step", h.train, "step_ms"), Series("data wait", h.train, "data_wait_ms"),
        Series("compute", h.train, "compute_ms"), Series("exposed communication", h.train, "comm_exposed_ms")},
       marks});
  charts += RenderStackedBars(RankSplit(h));
  charts += RenderLineChart(PerRankChart(h, "rank_data_wait_ms", "Data wait"));
  charts += RenderLineChart(PerRankChart(h, "rank_compute_ms", "Compute"));
  charts += RenderLineChart(PerRankChart(h, "rank_comm_exposed_ms", "Exposed communication"));
  const std::string title = "convoy run " + run_dir;
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + HtmlEscape(title) +
         "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
         ".grid{display:flex;flex-wrap:wrap;gap:16px}svg.chart{border:1px solid #ddd;background:#fff}"
         "table.facts{border-collapse:collapse;margin-bottom:16px}table.facts th{text-align:left;padding:3px 12px 3px "
         "0;"
         "vertical-align:top}table.facts td{padding:3px 0;font-family:monospace;max-width:900px;word-break:break-all}"
         "</style></head><body>\n<h1>" +
         HtmlEscape(title) + "</h1>\n" + Facts(run_dir, h) + "<h2>Training</h2>\n<div class=\"grid\">\n" + charts +
         "</div>\n<h2>Last test</h2>\n<div class=\"grid\">\n" + LastTest(h) +
         "</div>\n<p>Dashed lines: where the run was resumed. Written by convoy report from " +
         HtmlEscape(h.metrics_path) + ".</p>\n</body></html>\n";
}

}  // namespace convoy
