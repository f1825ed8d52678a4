#include "plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace resnet18_cifar10 {
namespace {

using json = nlohmann::json;

struct Series {
  std::string name;
  std::string color;
  std::vector<double> values;
};

std::string number(double value, int digits = 3) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
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
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

// A line chart of `series` over epochs 1..n, y in [0, y_max].
std::string line_chart(const std::string& title, const std::vector<Series>& series, double y_max) {
  const double width = 700, height = 300, left = 50, right = 210, top = 30, bottom = 40;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  size_t n = 0;
  for (const auto& s : series)
    n = std::max(n, s.values.size());
  auto x_of = [&](size_t i) {
    return left +
           (n <= 1 ? plot_w / 2 : plot_w * static_cast<double>(i) / static_cast<double>(n - 1));
  };
  auto y_of = [&](double v) { return top + plot_h * (1.0 - std::clamp(v / y_max, 0.0, 1.0)); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" class=\"chart\">\n<text x=\"" << left << "\" y=\"18\" class=\"title\">"
      << escape(title) << "</text>\n";
  for (int k = 0; k <= 4; ++k) {  // horizontal grid with labels
    const double v = y_max * k / 4.0;
    svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << y_of(v)
        << "\" y2=\"" << y_of(v) << "\" class=\"grid\"/><text x=\"" << left - 6 << "\" y=\""
        << y_of(v) + 4 << "\" class=\"tick\" text-anchor=\"end\">" << number(v, 2) << "</text>\n";
  }
  const size_t stride = std::max<size_t>(1, n / 10);
  for (size_t i = 0; i < n; i += stride) {
    svg << "<text x=\"" << x_of(i) << "\" y=\"" << top + plot_h + 16
        << "\" class=\"tick\" text-anchor=\"middle\">" << i + 1 << "</text>\n";
  }
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 6
      << "\" class=\"tick\" text-anchor=\"middle\">epoch</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    svg << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < s.values.size(); ++i) {
      svg << (i ? " " : "") << number(x_of(i), 1) << "," << number(y_of(s.values[i]), 1);
    }
    svg << "\"/>\n";
    const double ly = top + 14 + 18.0 * static_cast<double>(k);
    svg << "<rect x=\"" << left + plot_w + 12 << "\" y=\"" << ly - 9
        << "\" width=\"12\" height=\"4\" fill=\"" << s.color << "\"/><text x=\""
        << left + plot_w + 30 << "\" y=\"" << ly - 4 << "\" class=\"tick\">" << escape(s.name)
        << (s.values.empty() ? "" : " " + number(s.values.back())) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

// Rows: layers (model order); columns: epochs; colour: live width / initial width.
std::string width_heatmap(const std::vector<json>& epochs) {
  const auto& first = epochs.front().at("live_units");
  const double cell_w = std::max(4.0, std::min(24.0, 560.0 / static_cast<double>(epochs.size())));
  const double cell_h = 14, left = 190, top = 30;
  const double width = left + cell_w * static_cast<double>(epochs.size()) + 90;
  const double height = top + cell_h * static_cast<double>(first.size()) + 30;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" class=\"chart\">\n<text x=\"10\" y=\"18\" class=\"title\">Layer widths (live / "
         "initial units) per epoch</text>\n";
  for (size_t r = 0; r < first.size(); ++r) {
    const std::string name = first[r].at("layer");
    const double y = top + cell_h * static_cast<double>(r);
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + cell_h - 3
        << "\" class=\"tick\" text-anchor=\"end\">" << escape(name) << "</text>\n";
    double live = 0, initial = 0;
    for (size_t c = 0; c < epochs.size(); ++c) {
      const auto& layers = epochs[c].at("live_units");
      const auto found = std::find_if(layers.begin(), layers.end(),
                                      [&](const json& l) { return l.at("layer") == name; });
      if (found == layers.end())
        continue;
      initial = found->at("initial").get<double>();
      live = found->at("live").get<double>();
      const double fraction = initial > 0 ? live / initial : 1.0;
      // Dark blue at full width, fading to pale as units are removed.
      const int shade = static_cast<int>(235 - 190 * fraction);
      svg << "<rect x=\"" << left + cell_w * static_cast<double>(c) << "\" y=\"" << y
          << "\" width=\"" << cell_w - 1 << "\" height=\"" << cell_h - 1 << "\" fill=\"rgb("
          << shade << "," << shade + 10 << ",245)\"><title>" << escape(name) << ", epoch " << c + 1
          << ": " << live << " of " << initial << "</title></rect>\n";
    }
    svg << "<text x=\"" << left + cell_w * static_cast<double>(epochs.size()) + 6 << "\" y=\""
        << y + cell_h - 3 << "\" class=\"tick\">" << live << "/" << initial << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

std::vector<double> column(const std::vector<json>& epochs, const char* key) {
  std::vector<double> values;
  for (const auto& e : epochs)
    values.push_back(e.value(key, 0.0));
  return values;
}

}  // namespace

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("demon_plot: cannot open " + path);
  std::vector<json> lines;
  int64_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty())
      continue;
    try {
      lines.push_back(json::parse(line));
    } catch (const json::parse_error& error) {
      throw std::runtime_error("demon_plot: " + path + " line " + std::to_string(number) + ": " +
                               error.what());
    }
  }
  return lines;
}

std::string render_report(const std::vector<json>& epochs, const json& summary,
                          const std::string& title) {
  if (epochs.empty())
    throw std::runtime_error("demon_plot: no epochs to plot");
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << escape(title)
       << "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
          ".chart{display:block;margin:12px 0}.title{font-size:14px;font-weight:bold}"
          ".tick{font-size:11px;fill:#444}.grid{stroke:#ddd}"
          "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #eee;"
          "text-align:left}</style></head><body>\n<h2>"
       << escape(title) << "</h2>\n";
  if (summary.is_object()) {
    html << "<table>";
    for (const char* key :
         {"test_accuracy", "best_test_accuracy", "neural_sparsity", "param_sparsity", "flops_ratio",
          "parameters", "train_seconds", "images_per_second", "prune_events"}) {
      if (summary.contains(key))
        html << "<tr><th>" << key << "</th><td>" << summary[key].dump() << "</td></tr>";
    }
    html << "</table>\n";
  }
  html << line_chart("Accuracy",
                     {{"train", "#1f77b4", column(epochs, "train_accuracy")},
                      {"test", "#d62728", column(epochs, "test_accuracy")}},
                     1.0);
  html << line_chart("Sparsity and FLOPs",
                     {{"neural sparsity", "#2ca02c", column(epochs, "neural_sparsity")},
                      {"param sparsity", "#9467bd", column(epochs, "param_sparsity")},
                      {"FLOPs ratio", "#ff7f0e", column(epochs, "flops_ratio")}},
                     1.0);
  html << width_heatmap(epochs);
  html << "</body></html>\n";
  return html.str();
}

}  // namespace resnet18_cifar10
