#include "examples/common/learning_curve.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

namespace ds::trainer {
namespace {

constexpr double kPanelWidth = 420, kPanelHeight = 300, kMargin = 50, kTitleHeight = 30;

struct Series {
  const char* label;
  const char* colour;
  std::function<double(const EpochRecord&)> value;
};

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

// One panel at horizontal offset x0: a frame, y ticks at the range ends and middle, epoch
// ticks, a polyline (with dots, visible for a single epoch) per series and a legend.
std::string panel(const std::vector<EpochRecord>& records, const std::vector<Series>& series,
                  const char* y_label, double x0) {
  double low = std::numeric_limits<double>::infinity(), high = -low;
  for (const auto& s : series) {
    for (const auto& r : records) {
      const double v = s.value(r);
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    }
  }
  if (!std::isfinite(low)) low = 0, high = 1;
  if (high - low < 1e-9) low -= 0.5, high += 0.5;
  const int first = records.front().epoch, last = records.back().epoch;
  const double span = std::max(1, last - first);
  const double left = x0 + kMargin, right = x0 + kPanelWidth - 10;
  const double top = kTitleHeight + 10, bottom = kTitleHeight + kPanelHeight - kMargin;
  auto px = [&](int epoch) { return left + (epoch - first) / span * (right - left); };
  auto py = [&](double v) { return bottom - (v - low) / (high - low) * (bottom - top); };

  std::string svg = "<rect x='" + number(left) + "' y='" + number(top) + "' width='" +
                    number(right - left) + "' height='" + number(bottom - top) +
                    "' fill='none' stroke='#888'/>\n";
  for (double v : {low, (low + high) / 2, high}) {
    svg += "<text x='" + number(left - 4) + "' y='" + number(py(v) + 4) +
           "' text-anchor='end' font-size='11'>" + number(v) + "</text>\n";
  }
  for (int epoch : {first, (first + last) / 2, last}) {
    svg += "<text x='" + number(px(epoch)) + "' y='" + number(bottom + 15) +
           "' text-anchor='middle' font-size='11'>" + std::to_string(epoch) + "</text>\n";
  }
  svg += "<text x='" + number((left + right) / 2) + "' y='" + number(bottom + 32) +
         "' text-anchor='middle' font-size='12'>epoch</text>\n";
  svg += "<text x='" + number(x0 + 12) + "' y='" + number((top + bottom) / 2) +
         "' font-size='12' transform='rotate(-90 " + number(x0 + 12) + ' ' +
         number((top + bottom) / 2) + ")' text-anchor='middle'>" + y_label + "</text>\n";
  double legend_y = top + 14;
  for (const auto& s : series) {
    std::string points;
    for (const auto& r : records)
      points += number(px(r.epoch)) + ',' + number(py(s.value(r))) + ' ';
    svg += "<polyline fill='none' stroke='" + std::string(s.colour) +
           "' stroke-width='2' points='" + points + "'/>\n";
    for (const auto& r : records) {
      svg += "<circle cx='" + number(px(r.epoch)) + "' cy='" + number(py(s.value(r))) +
             "' r='2.5' fill='" + s.colour + "'/>\n";
    }
    svg += "<text x='" + number(right - 8) + "' y='" + number(legend_y) +
           "' text-anchor='end' font-size='12' fill='" + s.colour + "'>" + s.label + "</text>\n";
    legend_y += 15;
  }
  return svg;
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string learning_curve_svg(const std::vector<EpochRecord>& records, const std::string& title) {
  const double width = 2 * kPanelWidth, height = kTitleHeight + kPanelHeight;
  std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='" + number(width) +
                    "' height='" + number(height) + "' font-family='sans-serif'>\n" +
                    "<rect width='100%' height='100%' fill='white'/>\n<text x='" +
                    number(width / 2) + "' y='20' text-anchor='middle' font-size='14'>" +
                    escape(title) + "</text>\n";
  if (records.empty()) return svg + "</svg>\n";
  svg += panel(records,
               {{"train loss", "#1f77b4", [](const EpochRecord& r) { return r.train_loss; }},
                {"test loss", "#ff7f0e", [](const EpochRecord& r) { return r.test_loss; }}},
               "loss", 0);
  svg += panel(records,
               {{"top-1 %", "#2ca02c", [](const EpochRecord& r) { return r.top1; }},
                {"top-5 %", "#9467bd", [](const EpochRecord& r) { return r.top5; }}},
               "test accuracy (%)", kPanelWidth);
  return svg + "</svg>\n";
}

}  // namespace ds::trainer
