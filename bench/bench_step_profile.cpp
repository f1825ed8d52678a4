// Where the time of a DemP training step goes, for dense and pruned ResNet-18s (CIFAR variant):
// per step the data pipeline, forward, backward and optimizer, and each part DemonPruner adds
// (activity read from the graph, live mask, regularizer, noise); per event the cut and the
// eval-mode death check; and evaluation. Pruned models are made by removing random units from
// every prunable group until the FLOPs ratio is reached, or loaded from checkpoints the example
// wrote (--models: the shapes DemP actually produced). Writes JSON and prints the realized
// speed-up against the FLOPs speed-up.
//
//   ./build/bench/bench_step_profile --widths 0.5,0.125 --ratios 1,0.5,0.25,0.1 --out prof.json
//   ./build/bench/bench_step_profile --widths 0.5 --ratios 1,0.25 --models RUN/model_final.pt
//
// The ratios must start at 1 (the dense model every speed-up refers to).
//
// Uses every core unless --threads or OMP_NUM_THREADS says otherwise; --device cuda on a GPU.
#include <demon/demon.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "data_pipeline.h"
#include "resnet.h"
#include "synthetic_data.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Timer {
  torch::Device device;
  void sync() const {
    if (device.is_cuda())
      torch::cuda::synchronize();
  }
  // Milliseconds taken by `work`, synchronized on both ends.
  double operator()(const std::function<void()>& work) const {
    sync();
    const auto start = Clock::now();
    work();
    sync();
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  }
};

double median(std::vector<double> values) {
  if (values.empty())
    return 0.0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Removes random prunable units, a few per group at a time, until the FLOPs are at most `ratio`
// of `initial_flops`. Returns the time of the cuts in milliseconds.
double prune_to(demon::DependencyGraph& graph, torch::optim::Optimizer& optimizer,
                int64_t initial_flops, double ratio, int64_t multiple, std::mt19937& rng,
                const Timer& timer) {
  double ms = 0.0;
  while (static_cast<double>(graph.flops()) > ratio * static_cast<double>(initial_flops)) {
    std::vector<int64_t> units;
    for (const auto& group : graph.groups()) {
      std::vector<int64_t> candidates;
      for (int64_t u : group.units) {
        if (graph.prunable(u))
          candidates.push_back(u);
      }
      // A twentieth of the group per round (at least what the width multiple lets go), keeping
      // at least 2 units.
      const auto take =
          std::min<size_t>(std::max<size_t>(static_cast<size_t>(multiple), group.units.size() / 20),
                           group.units.size() > 2 ? group.units.size() - 2 : 0);
      std::shuffle(candidates.begin(), candidates.end(), rng);
      for (size_t i = 0; i < take && i < candidates.size(); ++i)
        units.push_back(candidates[i]);
    }
    if (units.empty())
      break;
    const auto options = demon::PruneOptions().width_multiple(multiple);
    int64_t removed = 0;
    ms += timer(
        [&] { removed = demon::prune_units(graph, units, &optimizer, options).removed.size(); });
    if (removed == 0)
      break;  // every group sits at a floor
  }
  return ms;
}

// Elements per sample at the activations the graph reads: what Pressure::kTime weighs beside
// FLOPs, and what tools/element_cost.py fits step times against.
int64_t activation_elements(const demon::DependencyGraph& graph) {
  int64_t total = 0;
  for (const auto& site : graph.sites())
    total += site.positions * static_cast<int64_t>(site.owner.size());
  return total;
}

// One configuration: a ResNet-18 pruned to a FLOPs ratio by random cuts, or to the shape of a
// checkpoint when `checkpoint` is set, with everything a DemP step uses.
struct Config {
  Config(double width, double ratio, const std::string& checkpoint, int64_t multiple,
         torch::MemoryFormat format, torch::Device device,
         const std::pair<torch::Tensor, torch::Tensor>& sample, const Timer& timer)
      : model(resnet18_cifar10::ResNetOptions().width(width)), source(checkpoint) {
    model->to(device);
    optimizer = std::make_shared<torch::optim::AdamW>(
        model->parameters(), torch::optim::AdamWOptions(5e-3).weight_decay(5e-4));
    auto discover = [&] {
      // From the loss, as DemonPruner does: activity is read from the same structure.
      return demon::DependencyGraph::discover(
          *model, torch::cross_entropy_loss(model->forward(sample.first), sample.second));
    };
    graph.emplace(discover());
    initial_flops = graph->flops();
    if (checkpoint.empty()) {
      std::mt19937 rng(1);
      cut_ms = prune_to(*graph, *optimizer, initial_flops, ratio, multiple, rng, timer);
    } else {
      // Shrinks every tensor in place (the optimizer keeps holding them); refuses a checkpoint
      // of a wider model. A narrower one would fit, so the width it was trained at is checked.
      json extra;
      try {
        extra = demon::load_checkpoint(checkpoint, *model);
      } catch (const demon::Error& error) {
        throw std::invalid_argument(std::string(error.what()) +
                                    " (--models takes model_final.pt or checkpoint.pt of the "
                                    "example's ResNet-18, selection shortcuts on)");
      }
      const auto config = extra.value("config", json::object());
      if (!config.contains("width")) {
        throw std::invalid_argument(checkpoint +
                                    " records no width (not written by the example program)");
      }
      const double saved = config.at("width").get<double>();
      if (saved != width) {
        char message[160];
        std::snprintf(message, sizeof message, " holds a model of width %g, not the --widths %g",
                      saved, width);
        throw std::invalid_argument(checkpoint + message);
      }
    }
    if (format == torch::MemoryFormat::ChannelsLast) {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) {
        if (p.dim() == 4)
          p.set_data(p.contiguous(format));
      }
    }
    // A cut can change the forward's structure (a ChannelSelection that lost inputs adds an
    // index_copy): discover it again, as DemonPruner does at the next backward().
    graph.emplace(discover());
    regularizer.emplace(*model, demon::Regularizer::kLasso);
    noise.emplace(model->parameters(), demon::NoiseMode::kLiveOnly, 0);
  }
  resnet18_cifar10::ResNet18 model;
  std::string source;  // the checkpoint, or empty for random cuts
  std::shared_ptr<torch::optim::AdamW> optimizer;
  std::optional<demon::DependencyGraph> graph;
  std::optional<demon::ScaleRegularizer> regularizer;
  std::optional<demon::AsymmetricNoise> noise;
  demon::ActivityTracker activity;
  int64_t initial_flops = 0;
  double cut_ms = 0.0;
  std::map<std::string, std::vector<double>> ms;
};

// Every ratio at one width. Steps are interleaved across the configurations (one step of each in
// turn), so that slow drift of a shared machine falls on all of them alike; medians per part.
json profile_width(double width, const std::vector<double>& ratios,
                   const std::vector<std::string>& models, int64_t batch, int64_t steps,
                   int64_t multiple, torch::MemoryFormat format, torch::Device device) {
  using namespace resnet18_cifar10;
  const Timer timer{device};
  const auto data = make_synthetic_cifar10(4096, 0, 0);
  DevicePipeline pipeline(data, device, batch, /*shuffle=*/true, /*augment=*/true, 0);
  DevicePipeline eval_pipeline(data, device, 512, /*shuffle=*/false, /*augment=*/false, 0);
  const auto check_batch = eval_pipeline.head(512).contiguous(format);
  auto sample = pipeline.batch(0, 0);
  sample.first = sample.first.contiguous(format);
  std::vector<std::unique_ptr<Config>> configs;
  for (double ratio : ratios) {
    torch::manual_seed(0);  // the same dense model before each cut
    configs.push_back(
        std::make_unique<Config>(width, ratio, "", multiple, format, device, sample, timer));
  }
  for (const auto& path : models) {
    torch::manual_seed(0);
    configs.push_back(
        std::make_unique<Config>(width, 0.0, path, multiple, format, device, sample, timer));
  }
  int64_t batch_index = 0;
  for (int64_t step = -2; step < steps; ++step) {  // two warm-up steps
    for (auto& c : configs) {
      std::pair<torch::Tensor, torch::Tensor> xy;
      torch::Tensor loss;
      std::map<std::string, double> t;
      t["data"] = timer([&] {
        xy = pipeline.batch(1, batch_index++ % pipeline.batches());
        xy.first = xy.first.contiguous(format);
      });
      t["zero_grad"] = timer([&] { c->optimizer->zero_grad(); });
      t["forward"] =
          timer([&] { loss = torch::cross_entropy_loss(c->model->forward(xy.first), xy.second); });
      t["activity"] = timer([&] {
        if (!c->activity.observe(*c->graph, loss))
          throw std::runtime_error("the activity read did not match the graph");
      });
      t["backward"] = timer([&] { loss.backward(); });
      t["live_mask"] = timer([&] { c->noise->capture_live_mask(); });
      t["regularizer"] = timer([&] { c->regularizer->apply(1e-3); });
      t["optimizer"] = timer([&] { c->optimizer->step(); });
      t["noise"] = timer([&] { c->noise->apply(5e-5); });
      if (step >= 0) {
        for (const auto& [key, value] : t)
          c->ms[key].push_back(value);
      }
    }
  }
  json rows = json::array();
  double dense_step = 0.0;
  for (size_t i = 0; i < configs.size(); ++i) {
    auto& c = *configs[i];
    int64_t parameters = 0;
    for (const auto& p : c.model->parameters())
      parameters += p.numel();
    json row = {{"width", width},
                {"width_multiple", multiple},
                {"model", c.source.empty() ? "random cuts" : c.source},
                {"target_flops_ratio", i < ratios.size() ? json(ratios[i]) : json()},
                {"flops_ratio", static_cast<double>(c.graph->flops()) / c.initial_flops},
                {"flops", c.graph->flops()},
                {"activation_elements", activation_elements(*c.graph)},
                {"parameters", parameters},
                {"cut_ms", c.cut_ms}};
    double bare = 0.0, extra = 0.0;
    for (const auto& [key, values] : c.ms) {
      const double m = median(values);
      row[key + "_ms"] = m;
      if (key == "activity" || key == "live_mask" || key == "regularizer" || key == "noise") {
        extra += m;
      } else if (key != "data") {
        bare += m;
      }
    }
    row["bare_step_ms"] = bare;
    row["pruner_step_ms"] = bare + extra;
    row["pruner_overhead"] = (bare + extra) / bare;
    // The eval-mode death check (one batch of 512, with its autograd graph) and evaluation.
    row["death_check_512_ms"] = timer([&] {
      c.model->eval();
      torch::AutoGradMode on(true);
      demon::ActivityTracker eval_activity;
      eval_activity.observe(*c.graph, c.model->forward(check_batch), /*same_structure=*/false);
      eval_activity.dead_units(*c.graph);
      c.model->train();
    });
    const double eval_ms = timer([&] {
      c.model->eval();
      torch::NoGradGuard no_grad;
      for (int64_t b = 0; b < eval_pipeline.batches(); ++b)
        c.model->forward(eval_pipeline.batch(0, b).first.contiguous(format))
            .argmax(1)
            .sum()
            .item<int64_t>();
      c.model->train();
    });
    row["eval_per_1000_ms"] = eval_ms * 1000.0 / (eval_pipeline.batches() * 512.0);
    if (i == 0)
      dense_step = bare;
    row["realized_speedup"] = dense_step / bare;
    row["flops_speedup"] = static_cast<double>(c.initial_flops) / c.graph->flops();
    row["efficiency"] = row["realized_speedup"].get<double>() / row["flops_speedup"].get<double>();
    std::printf(
        "width %.3f  FLOPs %.3f  bare %.1f ms  pruner %.1f ms (x%.3f)  speed-up %.2f of %.2f  %s\n",
        width, row["flops_ratio"].get<double>(), bare, bare + extra,
        row["pruner_overhead"].get<double>(), row["realized_speedup"].get<double>(),
        row["flops_speedup"].get<double>(), row["model"].get<std::string>().c_str());
    std::fflush(stdout);
    rows.push_back(row);
  }
  return rows;
}

std::vector<double> parse_list(const std::string& text) {
  std::vector<double> values;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    values.push_back(std::stod(text.substr(start, comma - start)));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Where the time of a DemP training step goes (ResNet-18, CIFAR)"};
  std::string widths_text = "0.5,0.125", ratios_text = "1,0.5,0.25,0.1", out, device_name = "cpu";
  int64_t batch = 128, steps = 5, threads = 0, multiple = 1;
  app.add_option("--widths", widths_text, "width multipliers, comma-separated");
  app.add_option("--ratios", ratios_text, "FLOPs ratios to prune to, descending, starting at 1");
  app.add_option("--batch", batch, "training batch size")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "measured steps per configuration (median)")
      ->check(CLI::PositiveNumber);
  app.add_option("--width-multiple", multiple,
                 "round each group's width up to a multiple of this when cutting")
      ->check(CLI::PositiveNumber);
  app.add_option("--device", device_name, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--threads", threads, "CPU threads (0: every core)")
      ->check(CLI::NonNegativeNumber);
  std::vector<std::string> models;
  app.add_option("--models", models,
                 "checkpoints the example wrote (model_final.pt), profiled beside the random "
                 "cuts; one --widths, the width they were trained at")
      ->delimiter(',')
      ->check(CLI::ExistingFile);
  bool channels_last = false;
  app.add_flag("--channels-last", channels_last,
               "channels-last memory format (inputs, conv weights)");
  app.add_option("--out", out, "JSON output");
  CLI11_PARSE(app, argc, argv);
  std::vector<double> widths, ratios;
  try {
    widths = parse_list(widths_text);
    ratios = parse_list(ratios_text);
  } catch (const std::exception&) {
    std::fprintf(stderr, "--widths and --ratios take numbers, comma-separated: got %s and %s\n",
                 widths_text.c_str(), ratios_text.c_str());
    return 2;
  }
  if (ratios.empty() || ratios.front() != 1.0) {
    std::fprintf(stderr, "--ratios must start at 1 (the dense model), got %s\n",
                 ratios_text.c_str());
    return 2;
  }
  if (!models.empty() && widths.size() != 1) {
    std::fprintf(stderr, "--models needs exactly one --widths (the models' width), got %s\n",
                 widths_text.c_str());
    return 2;
  }
  if (threads > 0) {
    torch::set_num_threads(static_cast<int>(threads));
  } else if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  const torch::Device device(device_name == "cuda" ? torch::kCUDA : torch::kCPU);
  const auto format =
      channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  json result = {{"device", device.str()},
                 {"threads", torch::get_num_threads()},
                 {"batch", batch},
                 {"steps", steps},
                 {"width_multiple", multiple},
                 {"channels_last", channels_last},
                 {"rows", json::array()}};
  try {
    for (double width : widths) {
      for (auto& row : profile_width(width, ratios, models, batch, steps, multiple, format, device))
        result["rows"].push_back(row);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_step_profile: %s\n", error.what());
    return 1;
  }
  if (!out.empty())
    std::ofstream(out) << result.dump(2) << "\n";
  return 0;
}
