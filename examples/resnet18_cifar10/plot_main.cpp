// demon_plot METRICS_JSONL [--out report.html] [--summary summary.json] [--title ...]
// Turns the example's metrics.jsonl into one HTML page of SVG charts.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "plot.h"

int main(int argc, char** argv) {
  CLI::App app{"demon_plot: accuracy, sparsity and per-layer widths over training, as HTML"};
  std::string metrics, out, summary_path, title = "demon run";
  app.add_option("metrics", metrics, "metrics.jsonl written by resnet18_cifar10")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", out, "output HTML (default: report.html next to the metrics)");
  app.add_option("--summary", summary_path, "summary.json (default: next to the metrics, if any)");
  app.add_option("--title", title, "page title");
  CLI11_PARSE(app, argc, argv);
  try {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(metrics).parent_path();
    if (out.empty())
      out = (dir / "report.html").string();
    if (summary_path.empty() && fs::exists(dir / "summary.json")) {
      summary_path = (dir / "summary.json").string();
    }
    nlohmann::json summary;
    if (!summary_path.empty())
      summary = nlohmann::json::parse(std::ifstream(summary_path));
    const auto page =
        resnet18_cifar10::render_report(resnet18_cifar10::read_jsonl(metrics), summary, title);
    std::ofstream(out) << page;
    std::cout << "wrote " << out << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
}
