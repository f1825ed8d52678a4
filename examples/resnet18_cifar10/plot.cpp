#include "plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace resnet18_cifar10 {
namespace {

using json = nlohmann::json;

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                               "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

std::string color_of(size_t index) {
  return kColors[index % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string number(double value, int digits) {
  if (std::isnan(value))
    return "–";
  char text[48];
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

double value_of(const json& object, const char* key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_number() ? found->get<double>()
                                                     : std::numeric_limits<double>::quiet_NaN();
}

// A "nice" tick step for a range: 1, 2 or 5 times a power of ten, about `count` ticks.
double tick_step(double range, int count) {
  const double raw = range / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw)
      return m * power;
  return 10 * power;
}

// Decimals that show a tick step exactly (0.25 -> 2, 5 -> 0).
int decimals_for(double step) {
  int digits = 0;
  while (digits < 4 && std::fabs(step * std::pow(10.0, digits) -
                                 std::round(step * std::pow(10.0, digits))) > 1e-9)
    ++digits;
  return digits;
}

struct Series {
  std::string name;
  std::string color;
  std::vector<double> x, y;
  bool dashed = false;
  bool points = false;                // marks only, no line
  std::string mark = "circle";        // circle, square, triangle, diamond
  std::vector<double> y_low, y_high;  // error bars (optional, same length as y)
  std::vector<std::string> labels;    // point tooltips (optional)
};

Series make_series(std::string name, std::string color, std::vector<double> x = {},
                   std::vector<double> y = {}) {
  Series s;
  s.name = std::move(name);
  s.color = std::move(color);
  s.x = std::move(x);
  s.y = std::move(y);
  return s;
}

struct Axis {
  std::string label;
  double min = std::numeric_limits<double>::quiet_NaN();  // NaN: from the data
  double max = std::numeric_limits<double>::quiet_NaN();
  int legend_digits = 2;  // the last value in the legend
};

std::string mark_svg(const std::string& mark, double x, double y, const std::string& color) {
  std::ostringstream svg;
  const double r = 4.5;
  if (mark == "square") {
    svg << "<rect x=\"" << number(x - r, 1) << "\" y=\"" << number(y - r, 1) << "\" width=\""
        << 2 * r << "\" height=\"" << 2 * r << "\" fill=\"" << color << "\"/>";
  } else if (mark == "triangle") {
    svg << "<polygon points=\"" << number(x, 1) << "," << number(y - r - 1, 1) << " "
        << number(x - r - 1, 1) << "," << number(y + r, 1) << " " << number(x + r + 1, 1) << ","
        << number(y + r, 1) << "\" fill=\"" << color << "\"/>";
  } else if (mark == "diamond") {
    svg << "<polygon points=\"" << number(x, 1) << "," << number(y - r - 1, 1) << " "
        << number(x + r + 1, 1) << "," << number(y, 1) << " " << number(x, 1) << ","
        << number(y + r + 1, 1) << " " << number(x - r - 1, 1) << "," << number(y, 1)
        << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\"/>";
  } else {
    svg << "<circle cx=\"" << number(x, 1) << "\" cy=\"" << number(y, 1) << "\" r=\"" << r
        << "\" fill=\"" << color << "\"/>";
  }
  return svg.str();
}

// An x-y chart: lines (or marks), axes with rounded ticks, a legend with each line's last value.
std::string xy_chart(const std::string& title, Axis x_axis, Axis y_axis,
                     const std::vector<Series>& series) {
  const double width = 760, height = 320, left = 60, right = 250, top = 30, bottom = 44;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x_lo = x_axis.min, x_hi = x_axis.max, y_lo = y_axis.min, y_hi = y_axis.max;
  auto widen = [](double& lo, double& hi, double v, bool fixed_lo, bool fixed_hi) {
    if (std::isnan(v))
      return;
    if (!fixed_lo)
      lo = std::isnan(lo) ? v : std::min(lo, v);
    if (!fixed_hi)
      hi = std::isnan(hi) ? v : std::max(hi, v);
  };
  const bool fx_lo = !std::isnan(x_axis.min), fx_hi = !std::isnan(x_axis.max);
  const bool fy_lo = !std::isnan(y_axis.min), fy_hi = !std::isnan(y_axis.max);
  for (const auto& s : series) {
    for (double v : s.x)
      widen(x_lo, x_hi, v, fx_lo, fx_hi);
    for (size_t i = 0; i < s.y.size(); ++i) {
      widen(y_lo, y_hi, s.y[i], fy_lo, fy_hi);
      if (i < s.y_low.size())
        widen(y_lo, y_hi, s.y_low[i], fy_lo, fy_hi);
      if (i < s.y_high.size())
        widen(y_lo, y_hi, s.y_high[i], fy_lo, fy_hi);
    }
  }
  if (std::isnan(x_lo) || std::isnan(x_hi)) {
    x_lo = 0;
    x_hi = 1;
  }
  if (std::isnan(y_lo) || std::isnan(y_hi)) {
    y_lo = 0;
    y_hi = 1;
  }
  if (x_hi - x_lo <= 0)
    x_hi = x_lo + 1;
  if (y_hi - y_lo <= 0)
    y_hi = y_lo + 1;
  const double x_step = tick_step(x_hi - x_lo, 6), y_step = tick_step(y_hi - y_lo, 5);
  if (!fx_lo)
    x_lo = std::floor(x_lo / x_step) * x_step;
  if (!fx_hi)
    x_hi = std::ceil(x_hi / x_step) * x_step;
  if (!fy_lo)
    y_lo = std::floor(y_lo / y_step) * y_step;
  if (!fy_hi)
    y_hi = std::ceil(y_hi / y_step) * y_step;
  auto px = [&](double v) { return left + plot_w * (v - x_lo) / (x_hi - x_lo); };
  auto py = [&](double v) { return top + plot_h * (1.0 - (v - y_lo) / (y_hi - y_lo)); };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" class=\"chart\">\n<text x=\"" << left << "\" y=\"18\" class=\"title\">"
      << escape(title) << "</text>\n";
  const int y_digits = decimals_for(y_step), x_digits = decimals_for(x_step);
  for (double v = y_lo; v <= y_hi + y_step * 1e-6; v += y_step) {
    svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << number(py(v), 1)
        << "\" y2=\"" << number(py(v), 1) << "\" class=\"grid\"/><text x=\"" << left - 6
        << "\" y=\"" << number(py(v) + 4, 1) << "\" class=\"tick\" text-anchor=\"end\">"
        << number(v, y_digits) << "</text>\n";
  }
  for (double v = x_lo; v <= x_hi + x_step * 1e-6; v += x_step) {
    svg << "<text x=\"" << number(px(v), 1) << "\" y=\"" << top + plot_h + 16
        << "\" class=\"tick\" text-anchor=\"middle\">" << number(v, x_digits) << "</text>\n";
  }
  svg << "<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << top << "\" y2=\""
      << top + plot_h << "\" class=\"axis\"/><line x1=\"" << left << "\" x2=\"" << left + plot_w
      << "\" y1=\"" << top + plot_h << "\" y2=\"" << top + plot_h << "\" class=\"axis\"/>\n";
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 8
      << "\" class=\"tick\" text-anchor=\"middle\">" << escape(x_axis.label) << "</text>\n";
  svg << "<text transform=\"translate(14," << top + plot_h / 2
      << ") rotate(-90)\" class=\"tick\" text-anchor=\"middle\">" << escape(y_axis.label)
      << "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    if (!s.points) {
      svg << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\""
          << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
      bool first = true;
      for (size_t i = 0; i < s.y.size() && i < s.x.size(); ++i) {
        if (std::isnan(s.x[i]) || std::isnan(s.y[i]))
          continue;
        svg << (first ? "" : " ") << number(px(s.x[i]), 1) << "," << number(py(s.y[i]), 1);
        first = false;
      }
      svg << "\"/>\n";
    } else {
      for (size_t i = 0; i < s.y.size() && i < s.x.size(); ++i) {
        if (std::isnan(s.x[i]) || std::isnan(s.y[i]))
          continue;
        if (i < s.y_low.size() && i < s.y_high.size() && s.y_high[i] > s.y_low[i]) {
          svg << "<line x1=\"" << number(px(s.x[i]), 1) << "\" x2=\"" << number(px(s.x[i]), 1)
              << "\" y1=\"" << number(py(s.y_low[i]), 1) << "\" y2=\"" << number(py(s.y_high[i]), 1)
              << "\" stroke=\"" << s.color << "\" stroke-width=\"1.5\"/>";
        }
        svg << "<g>" << mark_svg(s.mark, px(s.x[i]), py(s.y[i]), s.color);
        if (i < s.labels.size())
          svg << "<title>" << escape(s.labels[i]) << "</title>";
        svg << "</g>\n";
      }
    }
    const double ly = top + 10 + 18.0 * static_cast<double>(k);
    const double lx = left + plot_w + 14;
    if (s.points) {
      svg << mark_svg(s.mark, lx + 6, ly - 4, s.color);
    } else {
      svg << "<line x1=\"" << lx << "\" x2=\"" << lx + 14 << "\" y1=\"" << ly - 4 << "\" y2=\""
          << ly - 4 << "\" stroke=\"" << s.color << "\" stroke-width=\"2\""
          << (s.dashed ? " stroke-dasharray=\"4,2\"" : "") << "/>";
    }
    std::string last;
    if (!s.points && !s.y.empty() && !std::isnan(s.y.back()))
      last = " " + number(s.y.back(), y_axis.legend_digits);
    svg << "<text x=\"" << lx + 20 << "\" y=\"" << ly << "\" class=\"tick\">"
        << escape(s.name + last) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

// Rows: layers (model order); columns: epochs; colour: live width / initial width.
std::string width_heatmap(const std::string& title, const std::vector<json>& epochs) {
  const auto& first = epochs.front().at("live_units");
  const double cell_w = std::max(4.0, std::min(24.0, 560.0 / static_cast<double>(epochs.size())));
  const double cell_h = 14, left = 190, top = 30;
  const double width = left + cell_w * static_cast<double>(epochs.size()) + 90;
  const double height = top + cell_h * static_cast<double>(first.size()) + 30;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" class=\"chart\">\n<text x=\"10\" y=\"18\" class=\"title\">" << escape(title)
      << "</text>\n";
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

std::vector<double> column(const std::vector<json>& epochs, const char* key, double scale = 1) {
  std::vector<double> values;
  for (const auto& e : epochs)
    values.push_back(value_of(e, key) * scale);
  return values;
}

// Epoch numbers from 1; the x of "by epoch" charts.
std::vector<double> epoch_numbers(const std::vector<json>& epochs) {
  std::vector<double> x;
  for (size_t i = 0; i < epochs.size(); ++i)
    x.push_back(epochs[i].contains("epoch") ? value_of(epochs[i], "epoch") + 1
                                            : static_cast<double>(i + 1));
  return x;
}

std::string page_head(const std::string& title) {
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << escape(title)
       << "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
          ".chart{display:block;margin:12px 0}.title{font-size:14px;font-weight:bold}"
          ".tick{font-size:11px;fill:#444}.grid{stroke:#e4e4e4}.axis{stroke:#888}"
          ".row{display:flex;flex-wrap:wrap;gap:8px}"
          "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;"
          "border-bottom:1px solid #eee;text-align:right}th:first-child,td:first-child{text-align:"
          "left}</style></head><body>\n<h2>"
       << escape(title) << "</h2>\n";
  return html.str();
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

std::string render_report(const std::vector<RunRecord>& runs, const std::string& title) {
  if (runs.empty())
    throw std::runtime_error("demon_plot: no runs to plot");
  for (const auto& run : runs)
    if (run.epochs.empty())
      throw std::runtime_error("demon_plot: run \"" + run.name + "\" has no epochs");
  std::ostringstream html;
  html << page_head(title);

  // One row per run: the numbers that matter, rounded to what they can tell.
  html << "<table><tr><th>run</th><th>test accuracy</th><th>best</th><th>neural sparsity</th>"
          "<th>param sparsity</th><th>FLOPs ratio</th><th>mean FLOPs ratio</th><th>train time "
          "(s)</th><th>images/s</th><th>prune events</th><th>target reached at step</th></tr>\n";
  for (const auto& run : runs) {
    const json& last = run.epochs.back();
    const json& s = run.summary.is_object() ? run.summary : last;
    auto cell = [&](const char* key, int digits, double scale = 1) {
      const double v = value_of(s, key);
      return "<td>" + number(std::isnan(v) ? value_of(last, key) * scale : v * scale, digits) +
             "</td>";
    };
    html << "<tr><td>" << escape(run.name) << "</td>" << cell("test_accuracy", 2, 100)
         << cell("best_test_accuracy", 2, 100) << cell("neural_sparsity", 3)
         << cell("param_sparsity", 3) << cell("flops_ratio", 3) << cell("mean_flops_ratio", 3)
         << cell("train_seconds", 1) << cell("images_per_second", 1) << cell("prune_events", 0)
         << cell("target_reached_step", 0) << "</tr>\n";
  }
  html << "</table>\n<p>Accuracy in %; time is training only (no evaluation).</p>\n";

  auto per_run = [&](const char* key, double scale, bool by_time) {
    std::vector<Series> series;
    for (size_t r = 0; r < runs.size(); ++r) {
      Series s = make_series(runs[r].name, color_of(r), {}, column(runs[r].epochs, key, scale));
      s.x = by_time ? column(runs[r].epochs, "train_seconds") : epoch_numbers(runs[r].epochs);
      series.push_back(std::move(s));
    }
    return series;
  };
  const Axis epoch_axis{"epoch"}, time_axis{"training time (s)"};
  Axis accuracy_axis{"test accuracy (%)"};
  const Axis ratio_axis{"fraction of the dense model", 0.0, 1.0, 3};
  html << "<div class=\"row\">"
       << xy_chart("Test accuracy (%) by epoch", epoch_axis, accuracy_axis,
                   per_run("test_accuracy", 100, false))
       << xy_chart("Test accuracy (%) by training time", time_axis, accuracy_axis,
                   per_run("test_accuracy", 100, true))
       << "</div>\n<div class=\"row\">"
       << xy_chart("FLOPs ratio by epoch", epoch_axis, ratio_axis, per_run("flops_ratio", 1, false))
       << xy_chart("FLOPs ratio by training time", time_axis, ratio_axis,
                   per_run("flops_ratio", 1, true))
       << "</div>\n";
  // Sparsity: neural (solid) and parameter (dashed) per run.
  std::vector<Series> sparsity;
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto x = epoch_numbers(runs[r].epochs);
    sparsity.push_back(make_series(runs[r].name + ": neural sparsity", color_of(r), x,
                                   column(runs[r].epochs, "neural_sparsity")));
    Series params = make_series(runs[r].name + ": param sparsity", color_of(r), x,
                                column(runs[r].epochs, "param_sparsity"));
    params.dashed = true;
    sparsity.push_back(std::move(params));
  }
  html << xy_chart("Sparsity by epoch: neural sparsity (solid), parameter sparsity (dashed)",
                   epoch_axis, ratio_axis, sparsity);
  for (const auto& run : runs) {
    if (run.epochs.front().contains("live_units"))
      html << width_heatmap("Layer widths of " + run.name + " (live / initial units) per epoch",
                            run.epochs);
  }
  html << "</body></html>\n";
  return html.str();
}

std::string render_pareto(const json& rows, const std::string& title) {
  if (!rows.is_array() || rows.empty())
    throw std::runtime_error("demon_plot: the results hold no runs (a JSON array of rows)");
  // One point per configuration (name): mean over its seeds, the seeds' range as error bars.
  struct Point {
    std::string name, kind;
    std::vector<double> accuracy, parameters, flops, mean_flops, seconds;
  };
  std::map<std::string, Point> points;
  std::vector<std::string> order;
  for (const auto& row : rows) {
    const std::string name = row.value("name", std::string("?"));
    std::string kind = row.value("kind", std::string("demp"));
    if (kind == "demp" && name.find("nonoise") != std::string::npos)
      kind = "demp, no noise";
    else if (kind == "demp" && name.find("flat") != std::string::npos)
      kind = "demp, flat schedule";
    if (!points.count(name))
      order.push_back(name);
    auto& p = points[name];
    p.name = name;
    p.kind = kind;
    const double initial_flops = value_of(row, "initial_flops");
    p.accuracy.push_back(value_of(row, "test_accuracy") * 100);
    p.parameters.push_back(value_of(row, "parameters") / 1e3);
    p.flops.push_back(value_of(row, "flops") / 1e6);
    p.mean_flops.push_back(value_of(row, "mean_flops_ratio") * initial_flops / 1e6);
    p.seconds.push_back(value_of(row, "train_seconds"));
  }
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    size_t n = 0;
    for (double x : v)
      if (!std::isnan(x)) {
        sum += x;
        ++n;
      }
    return n ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  };
  const std::map<std::string, std::pair<std::string, std::string>> style = {
      {"dense", {"#444444", "square"}},
      {"demp", {"#d62728", "circle"}},
      {"slimming", {"#1f77b4", "triangle"}},
      {"demp, no noise", {"#ff7f0e", "diamond"}},
      {"demp, flat schedule", {"#2ca02c", "diamond"}}};
  auto chart = [&](const std::string& chart_title, const std::string& x_label,
                   std::vector<double> Point::*x) {
    std::map<std::string, Series> by_kind;
    std::vector<std::string> kinds;
    for (const auto& name : order) {
      const auto& p = points.at(name);
      if (!by_kind.count(p.kind)) {
        kinds.push_back(p.kind);
        const auto found = style.find(p.kind);
        Series s = make_series(p.kind,
                               found != style.end() ? found->second.first : color_of(kinds.size()));
        s.points = true;
        s.mark = found != style.end() ? found->second.second : "circle";
        by_kind.emplace(p.kind, std::move(s));
      }
      auto& s = by_kind.at(p.kind);
      const auto [low, high] = std::minmax_element(p.accuracy.begin(), p.accuracy.end());
      s.x.push_back(mean(p.*x));
      s.y.push_back(mean(p.accuracy));
      s.y_low.push_back(*low);
      s.y_high.push_back(*high);
      s.labels.push_back(p.name + ": " + number(mean(p.accuracy), 2) + "% over " +
                         std::to_string(p.accuracy.size()) + " seed(s), x " +
                         number(mean(p.*x), 1));
    }
    std::vector<Series> series;
    for (const auto& kind : kinds)
      series.push_back(by_kind.at(kind));
    return xy_chart(chart_title, Axis{x_label}, Axis{"test accuracy (%)"}, series);
  };
  std::ostringstream html;
  html << page_head(title);
  html << "<p>One point per configuration: the mean over its seeds, bars from the lowest to the "
          "highest seed. Hover a point for its name.</p>\n<div class=\"row\">"
       << chart("Accuracy against parameters", "parameters (thousands)", &Point::parameters)
       << chart("Accuracy against final FLOPs", "forward MFLOPs per image at the end",
                &Point::flops)
       << "</div>\n<div class=\"row\">"
       << chart("Accuracy against mean FLOPs over the run",
                "forward MFLOPs per image, mean over training steps", &Point::mean_flops)
       << chart("Accuracy against training time", "training time (s)", &Point::seconds)
       << "</div>\n";
  html << "<table><tr><th>configuration</th><th>kind</th><th>seeds</th><th>test accuracy "
          "(%)</th><th>range</th><th>parameters (k)</th><th>final MFLOPs</th><th>mean "
          "MFLOPs</th><th>train time (s)</th></tr>\n";
  for (const auto& name : order) {
    const auto& p = points.at(name);
    const auto [low, high] = std::minmax_element(p.accuracy.begin(), p.accuracy.end());
    html << "<tr><td>" << escape(name) << "</td><td>" << escape(p.kind) << "</td><td>"
         << p.accuracy.size() << "</td><td>" << number(mean(p.accuracy), 2) << "</td><td>"
         << number(*low, 2) << "–" << number(*high, 2) << "</td><td>"
         << number(mean(p.parameters), 1) << "</td><td>" << number(mean(p.flops), 2) << "</td><td>"
         << number(mean(p.mean_flops), 2) << "</td><td>" << number(mean(p.seconds), 1)
         << "</td></tr>\n";
  }
  html << "</table>\n</body></html>\n";
  return html.str();
}

}  // namespace resnet18_cifar10
