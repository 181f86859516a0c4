// Charts as inline SVG text, for the self-contained run report (convoy report): no script, no
// fonts or files fetched, so the page reads the same offline, in a mail, or years later.
// Elements carry classes (svg.chart, polyline.series, rect.bar, rect.cell) that tests count.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace convoy {

// Text made safe for HTML and SVG content and attributes.
std::string HtmlEscape(const std::string& text);

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
  bool dots = false;                              // also a dot at each point (few points: test results)
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;  // colours in order from one palette
  std::vector<double> marks;        // x of dashed vertical lines (where a run was resumed)
};

std::string RenderLineChart(const LineChart& chart);

// One horizontal bar per row, split into stacked parts (e.g. each rank's step: data wait,
// compute, exposed communication).
struct StackedBars {
  std::string title, unit;
  std::vector<std::string> rows, parts;
  std::vector<std::vector<double>> values;  // rows x parts
};

std::string RenderStackedBars(const StackedBars& bars);

// A classes x classes count matrix as shaded cells with their counts (row: true class).
std::string RenderConfusion(const std::string& title, const std::vector<std::string>& classes,
                            const std::vector<double>& counts);

}  // namespace convoy
