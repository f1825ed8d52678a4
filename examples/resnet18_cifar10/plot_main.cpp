// demon_plot RUN... [--names a,b] [--out report.html] [--title ...]
// demon_plot --pareto results.json [--out pareto.html]
// A RUN is a run directory of the example (metrics.jsonl, summary.json) or its metrics.jsonl;
// several RUNs share the charts (DemP beside its dense twin). --pareto plots a sweep's results
// (tools/sweep.py collect). Pages are self-contained HTML: inline SVG, no scripts, no network.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "plot.h"

namespace {

namespace fs = std::filesystem;

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');)
    parts.push_back(part);
  return parts;
}

resnet18_cifar10::RunRecord read_run(const std::string& input, const std::string& name) {
  const fs::path path(input);
  const fs::path metrics = fs::is_directory(path) ? path / "metrics.jsonl" : path;
  const fs::path dir = metrics.parent_path();
  resnet18_cifar10::RunRecord run;
  run.name = !name.empty()            ? name
             : fs::is_directory(path) ? fs::path(input).lexically_normal().filename().string()
                                      : dir.filename().string();
  if (run.name.empty())
    run.name = "run";
  run.epochs = resnet18_cifar10::read_jsonl(metrics.string());
  if (fs::exists(dir / "summary.json"))
    run.summary = nlohmann::json::parse(std::ifstream(dir / "summary.json"));
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "demon_plot: runs' accuracy, FLOPs and widths over training, or a sweep's Pareto "
      "front, as one HTML page"};
  std::vector<std::string> inputs;
  std::string out, names, title, pareto;
  app.add_option("runs", inputs, "run directories or their metrics.jsonl");
  app.add_option("--names", names, "comma-separated legend names, one per run");
  app.add_option("--pareto", pareto, "a sweep's results.json: the Pareto page instead")
      ->check(CLI::ExistingFile);
  app.add_option("--out", out, "output HTML (default: next to the first input)");
  app.add_option("--title", title, "page title");
  CLI11_PARSE(app, argc, argv);
  try {
    std::string page;
    if (!pareto.empty()) {
      if (!inputs.empty())
        throw std::invalid_argument("demon_plot: give runs or --pareto, not both");
      if (out.empty())
        out = (fs::path(pareto).parent_path() / "pareto.html").string();
      page = resnet18_cifar10::render_pareto(nlohmann::json::parse(std::ifstream(pareto)),
                                             title.empty() ? "demon sweep" : title);
    } else {
      if (inputs.empty())
        throw std::invalid_argument("demon_plot: no run given (a run directory or metrics.jsonl)");
      const auto given_names = split(names);
      if (!names.empty() && given_names.size() != inputs.size())
        throw std::invalid_argument("demon_plot: " + std::to_string(given_names.size()) +
                                    " names for " + std::to_string(inputs.size()) + " runs");
      std::vector<resnet18_cifar10::RunRecord> runs;
      for (size_t i = 0; i < inputs.size(); ++i)
        runs.push_back(read_run(inputs[i], names.empty() ? "" : given_names[i]));
      if (out.empty()) {
        const fs::path first(inputs.front());
        out = ((fs::is_directory(first) ? first : first.parent_path()) / "report.html").string();
      }
      page = resnet18_cifar10::render_report(runs, title.empty() ? "demon run" : title);
    }
    std::ofstream stream(out);
    stream << page;
    if (!stream)
      throw std::runtime_error("demon_plot: cannot write " + out);
    std::cout << "wrote " << out << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
}
