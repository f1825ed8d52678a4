#pragma once

// demon_plot: one self-contained HTML page (inline SVG, no scripts) from a run's metrics.jsonl:
// accuracy, sparsity and FLOPs over training, and a heatmap of every layer's width per epoch —
// how the network shrinks.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace resnet18_cifar10 {

/// The page for these metrics lines (one JSON object per epoch, as the trainer writes them) and
/// an optional summary (summary.json; null to omit).
std::string render_report(const std::vector<nlohmann::json>& epochs, const nlohmann::json& summary,
                          const std::string& title);

/// Reads a JSON-lines file; throws std::runtime_error naming the file and line on bad input.
std::vector<nlohmann::json> read_jsonl(const std::string& path);

}  // namespace resnet18_cifar10
