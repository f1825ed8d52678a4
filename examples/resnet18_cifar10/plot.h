#pragma once

// demon_plot: self-contained HTML pages (inline SVG, no scripts, no network).
// - A report of one or more runs from their metrics.jsonl: accuracy, sparsity and FLOPs over
//   epochs and over wall time, runs overlaid (DemP against its dense twin, say), and a heatmap of
//   every layer's width per epoch for each run.
// - A Pareto page from a sweep's results.json (tools/sweep.py): test accuracy against
//   parameters, final FLOPs, mean FLOPs over the run and wall time, one point per run
//   configuration (mean over seeds, the seeds' range as error bars), one mark per kind.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace resnet18_cifar10 {

/// One run: its name in legends, its metrics lines (one JSON object per epoch, as the trainer
/// writes them) and its summary.json (null when absent).
struct RunRecord {
  std::string name;
  std::vector<nlohmann::json> epochs;
  nlohmann::json summary;
};

/// The report page for `runs` (at least one, each with at least one epoch).
std::string render_report(const std::vector<RunRecord>& runs, const std::string& title);

/// The Pareto page for the rows of a sweep's results.json.
std::string render_pareto(const nlohmann::json& rows, const std::string& title);

/// Reads a JSON-lines file; throws std::runtime_error naming the file and line on bad input.
std::vector<nlohmann::json> read_jsonl(const std::string& path);

}  // namespace resnet18_cifar10
