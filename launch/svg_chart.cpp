#include "launch/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace convoy {
namespace {

// Colour-blind-safe (Okabe and Ito).
const char* const kPalette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"};
const char* Colour(size_t i) { return kPalette[i % (sizeof kPalette / sizeof *kPalette)]; }

constexpr double kWidth = 560, kHeight = 300;
constexpr double kLeft = 64, kRight = 16, kTop = 32, kBottom = 52;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string Px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Tick marks at 1, 2 or 5 times a power of ten, about `target` of them over [lo, hi].
std::vector<double> Ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  const double raw = span / target;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * power) {
      step = m * power;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

std::string Open(const std::string& title, double height = kHeight) {
  return "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Px(kWidth) + "\" height=\"" +
         Px(height) + "\" viewBox=\"0 0 " + Px(kWidth) + " " + Px(height) + "\" role=\"img\"><title>" +
         HtmlEscape(title) + "</title><text class=\"chart-title\" x=\"" + Px(kWidth / 2) +
         "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" + HtmlEscape(title) + "</text>";
}

std::string Text(double x, double y, const std::string& text, const std::string& anchor, int size = 11,
                 const std::string& extra = "") {
  return "<text x=\"" + Px(x) + "\" y=\"" + Px(y) + "\" text-anchor=\"" + anchor + "\" font-size=\"" +
         std::to_string(size) + "\"" + extra + ">" + HtmlEscape(text) + "</text>";
}

std::string Line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + Px(x1) + "\" y1=\"" + Px(y1) + "\" x2=\"" + Px(x2) + "\" y2=\"" + Px(y2) + "\" " + style +
         "/>";
}

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderLineChart(const LineChart& chart) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const ChartSeries& s : chart.series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  std::string svg = Open(chart.title);
  if (!(x0 <= x1)) return svg + Text(kWidth / 2, kHeight / 2, "no data yet", "middle", 12) + "</svg>";
  if (y0 > 0 && y0 < 0.3 * y1) y0 = 0;  // a range that nearly reaches zero starts there
  if (x1 - x0 < 1e-12) x0 -= 1, x1 += 1;
  if (y1 - y0 <= 1e-9 * std::fabs(y1)) {  // one value throughout (a constant learning rate): centre it
    const double pad = y1 != 0 ? std::fabs(y1) * 0.5 : 1;
    y0 -= pad, y1 += pad;
  }
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto X = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto Y = [&](double y) { return kTop + ph - (y - y0) / (y1 - y0) * ph; };
  for (const double t : Ticks(y0, y1)) {
    svg += Line(kLeft, Y(t), kLeft + pw, Y(t), "stroke=\"#e4e4e4\"");
    svg += Text(kLeft - 6, Y(t) + 4, Num(t), "end");
  }
  for (const double t : Ticks(x0, x1)) {
    svg += Line(X(t), kTop + ph, X(t), kTop + ph + 4, "stroke=\"#444\"");
    svg += Text(X(t), kTop + ph + 16, Num(t), "middle");
  }
  svg += "<rect x=\"" + Px(kLeft) + "\" y=\"" + Px(kTop) + "\" width=\"" + Px(pw) + "\" height=\"" + Px(ph) +
         "\" fill=\"none\" stroke=\"#444\"/>";
  for (const double m : chart.marks)
    if (m >= x0 && m <= x1)
      svg += "<line class=\"resume\" x1=\"" + Px(X(m)) + "\" y1=\"" + Px(kTop) + "\" x2=\"" + Px(X(m)) + "\" y2=\"" +
             Px(kTop + ph) + "\" stroke=\"#888\" stroke-dasharray=\"4 3\"><title>resumed at " + Num(m) +
             "</title></line>";
  // The legend's box, top right inside the plot, over the lines.
  const double legend_h = 14 * static_cast<double>(chart.series.size()) + 6;
  std::string legend = "<rect x=\"" + Px(kLeft + pw - 170) + "\" y=\"" + Px(kTop + 3) + "\" width=\"166\" height=\"" +
                       Px(legend_h) + "\" fill=\"#fff\" fill-opacity=\"0.85\"/>";
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    std::string points;
    for (const auto& [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) points += Px(X(x)) + "," + Px(Y(y)) + " ";
    svg += "<polyline class=\"series\" data-name=\"" + HtmlEscape(s.name) + "\" data-points=\"" +
           std::to_string(s.points.size()) + "\" fill=\"none\" stroke=\"" + Colour(i) +
           "\" stroke-width=\"1.6\" points=\"" + points + "\"/>";
    if (s.dots)
      for (const auto& [x, y] : s.points)
        svg += "<circle cx=\"" + Px(X(x)) + "\" cy=\"" + Px(Y(y)) + "\" r=\"3\" fill=\"" + Colour(i) + "\"><title>" +
               HtmlEscape(s.name) + " " + Num(y) + " at " + Num(x) + "</title></circle>";
    const double ly = kTop + 14 + 14 * static_cast<double>(i);
    legend += Line(kLeft + pw - 164, ly - 4, kLeft + pw - 144, ly - 4,
                   std::string("stroke=\"") + Colour(i) + "\" stroke-width=\"2\"");
    legend += Text(kLeft + pw - 140, ly, s.name, "start");
  }
  svg += legend;
  svg += Text(kLeft + pw / 2, kHeight - 12, chart.x_label, "middle", 12);
  svg +=
      Text(14, kTop + ph / 2, chart.y_label, "middle", 12, " transform=\"rotate(-90 14 " + Px(kTop + ph / 2) + ")\"");
  return svg + "</svg>";
}

std::string RenderStackedBars(const StackedBars& bars) {
  const double row_h = 22, height = kTop + 30 + row_h * static_cast<double>(bars.rows.size()) + 40;
  std::string svg = Open(bars.title, height);
  double most = 0;
  for (const auto& row : bars.values) {
    double sum = 0;
    for (const double v : row) sum += std::max(v, 0.0);
    most = std::max(most, sum);
  }
  if (most <= 0) most = 1;
  const double left = 90, pw = kWidth - left - 80;
  for (size_t r = 0; r < bars.rows.size(); ++r) {
    const double y = kTop + 24 + row_h * static_cast<double>(r);
    svg += Text(left - 6, y + 14, bars.rows[r], "end");
    double x = left, sum = 0;
    for (size_t p = 0; p < bars.parts.size() && p < bars.values[r].size(); ++p) {
      const double v = std::max(bars.values[r][p], 0.0), w = v / most * pw;
      svg += "<rect class=\"bar\" x=\"" + Px(x) + "\" y=\"" + Px(y) + "\" width=\"" + Px(w) + "\" height=\"" +
             Px(row_h - 6) + "\" fill=\"" + Colour(p) + "\"><title>" + HtmlEscape(bars.rows[r] + ": " + bars.parts[p]) +
             " " + Num(v) + " " + HtmlEscape(bars.unit) + "</title></rect>";
      x += w, sum += v;
    }
    svg += Text(x + 4, y + 13, Num(sum) + " " + bars.unit, "start");
  }
  double lx = left;
  const double ly = kTop + 10;
  for (size_t p = 0; p < bars.parts.size(); ++p) {
    svg += "<rect x=\"" + Px(lx) + "\" y=\"" + Px(ly - 8) + "\" width=\"10\" height=\"10\" fill=\"" + Colour(p) +
           "\"/>" + Text(lx + 14, ly + 1, bars.parts[p], "start");
    lx += 24 + 7.0 * static_cast<double>(bars.parts[p].size());
  }
  return svg + "</svg>";
}

std::string RenderConfusion(const std::string& title, const std::vector<std::string>& classes,
                            const std::vector<double>& counts) {
  const size_t n = classes.size();
  const double label_w = 96, cell = std::min(40.0, (kWidth - label_w - 16) / std::max<size_t>(n, 1));
  const double top = kTop + 86, height = top + cell * static_cast<double>(n) + 24;
  std::string svg = Open(title, height);
  if (counts.size() != n * n)
    return svg + Text(kWidth / 2, kTop + 20, "no confusion matrix logged", "middle") + "</svg>";
  double most = 1;
  for (const double c : counts) most = std::max(most, c);
  for (size_t p = 0; p < n; ++p) {  // predicted-class labels, slanted above the columns
    const double x = label_w + cell * (static_cast<double>(p) + 0.5);
    svg += Text(x, top - 6, classes[p], "start", 10, " transform=\"rotate(-50 " + Px(x) + " " + Px(top - 6) + ")\"");
  }
  for (size_t t = 0; t < n; ++t) {
    const double y = top + cell * static_cast<double>(t);
    svg += Text(label_w - 6, y + cell / 2 + 4, classes[t], "end", 10);
    for (size_t p = 0; p < n; ++p) {
      const double c = counts[t * n + p], shade = std::sqrt(c / most);  // sqrt: small confusions stay visible
      const int level = static_cast<int>(255 - 200 * shade);
      char fill[16];
      std::snprintf(fill, sizeof fill, "rgb(%d,%d,255)", level, level);
      const double x = label_w + cell * static_cast<double>(p);
      svg += "<rect class=\"cell\" x=\"" + Px(x) + "\" y=\"" + Px(y) + "\" width=\"" + Px(cell) + "\" height=\"" +
             Px(cell) + "\" fill=\"" + fill + "\" stroke=\"#fff\"><title>" +
             HtmlEscape("true " + classes[t] + ", predicted " + classes[p]) + ": " + Num(c) + "</title></rect>";
      if (cell >= 18 && c > 0)
        svg += Text(x + cell / 2, y + cell / 2 + 4, Num(c), "middle", cell >= 30 ? 10 : 8,
                    shade > 0.6 ? " fill=\"#fff\"" : "");
    }
  }
  svg +=
      Text(label_w + cell * static_cast<double>(n) / 2, height - 6, "predicted class (rows: true class)", "middle", 11);
  return svg + "</svg>";
}

}  // namespace convoy
