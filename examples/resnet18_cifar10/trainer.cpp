#include "trainer.h"

#include <demon/demon.h>
#include <demon/distributed.h>
#include <torch/torch.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "cifar10.h"
#include "data_pipeline.h"
#include "export.h"
#include "log.h"
#include "resnet.h"
#include "synthetic_data.h"

namespace resnet18_cifar10 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string duration_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return text;
}

void use_threads(const TrainConfig& config) {
  if (config.threads > 0) {
    torch::set_num_threads(static_cast<int>(config.threads));
  } else if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
}

torch::Device device_of(const TrainConfig& config, int rank = 0) {
  if (config.device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("device \"cuda\" requested, but no CUDA device is available");
  }
  if (config.device == "cuda") {
    at::globalContext().setBenchmarkCuDNN(config.cudnn_benchmark);
  }
  if (config.device != "cuda")
    return torch::Device(torch::kCPU);
  // Data parallel: one GPU per rank, shared round-robin when there are fewer.
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(
                                         rank % static_cast<int>(torch::cuda::device_count())));
}

// The data-parallel group of this run, or null for one process: Gloo on CPU, NCCL on CUDA.
c10::intrusive_ptr<demon::ProcessGroup> make_group(const RunOptions& run,
                                                   const TrainConfig& config) {
  if (run.world_size < 1 || run.rank < 0 || run.rank >= run.world_size) {
    throw std::invalid_argument("--rank must be in [0, --world-size), got rank " +
                                std::to_string(run.rank) + " of " + std::to_string(run.world_size));
  }
  if (run.world_size == 1)
    return {};
  if (run.store_file.empty() && run.master_addr.empty()) {
    throw std::invalid_argument(
        "--world-size > 1 needs --store-file, or --master-addr (and --master-port)");
  }
  if (config.amp == "fp16") {
    throw std::invalid_argument(
        "--amp fp16 with --world-size > 1: each rank's loss scaler would decide alone to skip a "
        "step; use --amp bf16");
  }
  // Long enough for rank 0's evaluation and checkpoint writes, which the others wait out.
  const auto timeout = std::chrono::minutes(30);
  const auto store =
      run.store_file.empty()
          ? demon::make_tcp_store(run.master_addr, static_cast<uint16_t>(run.master_port), run.rank,
                                  run.world_size, timeout)
          : demon::make_file_store(run.store_file, run.world_size);
  const auto options = demon::ProcessGroupOptions().timeout(timeout).hostname(run.bind_addr);
  return config.device == "cuda" ? demon::make_nccl_group(store, run.rank, run.world_size, options)
                                 : demon::make_gloo_group(store, run.rank, run.world_size, options);
}

// This rank's share of a batch (all of it for one process).
torch::Tensor share_of(const torch::Tensor& batch, const RunOptions& run) {
  if (run.world_size == 1)
    return batch;
  return batch.tensor_split(run.world_size)[static_cast<size_t>(run.rank)];
}

// Without a data_dir: $CIFAR10_DIR, ./data or ./data/cifar10 if they hold the release.
std::string default_data_dir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CIFAR10_DIR"))
    candidates.emplace_back(env);
  candidates.emplace_back("data");
  candidates.emplace_back("data/cifar10");
  for (const auto& dir : candidates) {
    if (!find_cifar10(dir).empty())
      return dir;
  }
  return "";
}

// Which test set the run evaluates on: "cifar10" when load_data() finds the release, else
// "synthetic".
std::string test_set_of(const TrainConfig& config) {
  return (config.data_dir.empty() ? default_data_dir() : config.data_dir).empty() ? "synthetic"
                                                                                  : "cifar10";
}

std::pair<Dataset, Dataset> load_data(const TrainConfig& config) {
  const std::string dir = config.data_dir.empty() ? default_data_dir() : config.data_dir;
  if (!dir.empty()) {
    if (find_cifar10(dir).empty()) {
      throw std::runtime_error("no CIFAR-10 binary release in " + dir +
                               " (expected data_batch_1.bin ... test_batch.bin there or in its "
                               "cifar-10-batches-bin/)");
    }
    example_log::info("data: CIFAR-10 from %s", find_cifar10(dir).c_str());
    return {read_cifar10(dir, true), read_cifar10(dir, false)};
  }
  example_log::info(
      "data: no --data-dir given and no CIFAR-10 in $CIFAR10_DIR, ./data or "
      "./data/cifar10; using a synthetic CIFAR-shaped set (%lld train / %lld test images, "
      "10 classes). Pass --data-dir for real CIFAR-10.",
      static_cast<long long>(config.synthetic_train),
      static_cast<long long>(config.synthetic_test));
  return {make_synthetic_cifar10(config.synthetic_train, config.seed, 0),
          make_synthetic_cifar10(config.synthetic_test, config.seed, 1)};
}

ResNet18 build_model(const TrainConfig& config, torch::Device device) {
  ResNet18 model(
      ResNetOptions().width(config.width).selection_shortcuts(config.selection_shortcuts));
  model->to(device);
  if (config.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) {
      if (p.dim() == 4)
        p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  return model;
}

std::shared_ptr<torch::optim::Optimizer> build_optimizer(const TrainConfig& config,
                                                         ResNet18& model) {
  if (config.optimizer == "sgd") {
    return std::make_shared<torch::optim::SGD>(model->parameters(),
                                               torch::optim::SGDOptions(config.lr)
                                                   .momentum(config.momentum)
                                                   .weight_decay(config.weight_decay));
  }
  return std::make_shared<torch::optim::AdamW>(
      model->parameters(), torch::optim::AdamWOptions(config.lr).weight_decay(config.weight_decay));
}

// The learning rate at `step` of `total`.
double learning_rate(const TrainConfig& config, int64_t step, int64_t steps_per_epoch,
                     int64_t total) {
  if (config.lr_schedule == "one_cycle") {
    return demon::Schedule(demon::ScheduleOptions(demon::ScheduleKind::kOneCycle, config.lr, total))
        .value(step);
  }
  double lr = config.lr;
  if (config.lr_schedule == "step") {
    const int64_t epoch = step / steps_per_epoch;
    for (int64_t at : config.lr_decay_epochs) {
      if (epoch >= at)
        lr *= config.lr_decay_factor;
    }
  }
  return lr;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    group.options().set_lr(lr);
}

torch::Tensor prepare(torch::Tensor images, const TrainConfig& config) {
  return config.channels_last ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images;
}

// Runs the model under the configured autocast.
torch::Tensor run_model(ResNet18& model, const torch::Tensor& images, const TrainConfig& config) {
  if (config.amp == "none")
    return model->forward(images);
  // Autocast is per thread and must not outlive this pass, even when the forward throws.
  demon::CudaAutocast autocast(config.amp == "bf16" ? at::kBFloat16 : at::kHalf);
  return model->forward(images).to(torch::kFloat);
}

// The model's channel structure from an eval-mode pass: no BatchNorm running statistics change.
demon::DependencyGraph discover_quietly(ResNet18& model, const torch::Tensor& images,
                                        const TrainConfig& config) {
  const bool was_training = model->is_training();
  model->eval();
  auto graph =
      demon::DependencyGraph::discover(*model, run_model(model, prepare(images, config), config));
  model->train(was_training);
  return graph;
}

double evaluate(ResNet18& model, DevicePipeline& test, const TrainConfig& config,
                torch::Device device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  torch::Tensor correct = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kLong));
  for (int64_t b = 0; b < test.batches(); ++b) {
    auto [images, labels] = test.batch(0, b);
    correct += run_model(model, prepare(images, config), config).argmax(1).eq(labels).sum();
  }
  model->train(was_training);
  return static_cast<double>(correct.item<int64_t>()) / static_cast<double>(test.size());
}

// Per layer, in model order: {"layer", "initial", "live"} (convolutions, linear layers,
// selections: the layers whose output width is a number of units).
json widths_json(const demon::ModelSummary& summary) {
  json widths = json::array();
  for (const auto& layer : summary.layers) {
    if (layer.kind == "Conv" || layer.kind == "Linear" || layer.kind == "ChannelSelection") {
      widths.push_back(
          {{"layer", layer.name}, {"initial", layer.initial}, {"live", layer.current}});
    }
  }
  return widths;
}

// A stream that could not take everything (a full disk, say) ends the run with the reason.
void require_written(std::ofstream& out, const std::string& path) {
  out.flush();
  if (!out)
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

// Writes `text` to `path` through a temporary file and a rename: a crash or a full disk leaves
// the old file.
void write_text(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    require_written(out, path);
  }
  fs::rename(temp, path);
}

// Keeps the lines of a JSON-lines file whose `key` is <= `limit` (after a resume). A line cut
// short by a crash in the middle of its write is dropped.
void truncate_jsonl(const std::string& path, const std::string& key, int64_t limit) {
  std::ifstream in(path);
  if (!in)
    return;
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    const json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_object() && value.value(key, int64_t{0}) <= limit)
      kept += line + "\n";
  }
  in.close();
  write_text(path, kept);
}

void append_line(const std::string& path, const json& value) {
  std::ofstream out(path, std::ios::app);
  out << value.dump() << "\n";
  require_written(out, path);
}

void write_json(const std::string& path, const json& value) {
  write_text(path, value.dump(2) + "\n");
}

// fp16 autocast needs the loss scaled so that small gradients do not flush to zero; the grads
// are unscaled before the pruner sees them (its live mask and regularizer read real gradients).
class LossScaler {
 public:
  torch::Tensor scale(const torch::Tensor& loss) const { return loss * scale_; }
  // Unscales the gradients; false (and gradients zeroed) if any is not finite.
  bool unscale(torch::optim::Optimizer& optimizer) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (auto& group : optimizer.param_groups()) {
      for (auto& p : group.params()) {
        if (p.grad().defined())
          grads.push_back(p.mutable_grad());
      }
    }
    torch::_foreach_mul_(grads, 1.0 / scale_);
    bool finite = true;
    for (const auto& g : grads)
      finite = finite && torch::isfinite(g).all().item<bool>();
    if (!finite) {
      for (auto& g : grads)
        g.zero_();
      scale_ /= 2.0;
      good_steps_ = 0;
    } else if (++good_steps_ % 2000 == 0) {
      scale_ *= 2.0;
    }
    return finite;
  }

 private:
  double scale_ = 65536.0;
  int64_t good_steps_ = 0;
};

}  // namespace

json train(const TrainConfig& config, const RunOptions& run) {
  use_threads(config);
  const auto group = make_group(run, config);
  const bool lead = run.rank == 0;  // the rank that logs, evaluates and writes
  example_log::info_muted() = !lead;
  const torch::Device device = device_of(config, run.rank);
  fs::create_directories(run.out_dir);
  const std::string checkpoint_path = run.out_dir + "/checkpoint.pt";
  const std::string metrics_path = run.out_dir + "/metrics.jsonl";
  const std::string reports_path = run.out_dir + "/prune_reports.jsonl";
  if (lead)
    write_json(run.out_dir + "/config.json", config.to_json());

  torch::manual_seed(config.seed);
  auto [train_set, test_set] = load_data(config);
  DevicePipeline train_data(train_set, device, config.batch_size, /*shuffle=*/true, config.augment,
                            config.seed);
  DevicePipeline test_data(test_set, device, config.eval_batch_size, /*shuffle=*/false,
                           /*augment=*/false, config.seed);
  train_data.shard(run.rank, run.world_size);
  const int64_t steps_per_epoch = train_data.batches();
  const int64_t total_steps = config.epochs * steps_per_epoch;

  ResNet18 model = build_model(config, device);
  auto optimizer = build_optimizer(config, model);
  std::unique_ptr<demon::DemonPruner> pruner;
  if (!config.dense) {
    pruner = std::make_unique<demon::DemonPruner>(
        model.ptr(), optimizer, config.demon_options(total_steps, steps_per_epoch));
    const auto check = pruner->options().death_check();
    if (check != demon::DeathCheck::kTrain) {
      // The reference's check: a few unaugmented training batches, BatchNorm in eval mode.
      const auto images =
          train_data.head(config.death_check_batches * config.death_check_batch_size);
      std::vector<torch::Tensor> batches;
      for (int64_t b = 0; b * config.death_check_batch_size < images.size(0); ++b) {
        batches.push_back(prepare(share_of(images.slice(0, b * config.death_check_batch_size,
                                                        (b + 1) * config.death_check_batch_size),
                                           run),
                                  config));
      }
      pruner->set_death_check(batches, [&model, &config](const torch::Tensor& x) {
        return run_model(model, x, config);
      });
    }
    pruner->on_prune([&](const demon::PruneReport& report) {
      example_log::info(
          "prune event at step %lld: removed %lld units (%zu groups), neural sparsity %.3f, "
          "parameter sparsity %.3f, FLOPs %.3f of initial",
          static_cast<long long>(report.step), static_cast<long long>(report.units_removed),
          report.groups.size(), report.after.neural_sparsity(), report.after.parameter_sparsity(),
          report.after.flops_ratio());
      if (lead)
        append_line(reports_path, report.to_json());
    });
    if (group)
      pruner->set_process_group(group);
  } else if (group) {
    demon::broadcast_module(*model, *group);
  }
  int64_t parameters = 0;
  for (const auto& p : model->parameters())
    parameters += p.numel();
  const std::string method =
      config.dense ? "dense baseline" : "DemP " + pruner->options().to_json().dump();
  example_log::info(
      "model: ResNet-18 width %g (%lld parameters), %s on %s, %d threads%s; %lld epochs x %lld "
      "steps; %s",
      config.width, static_cast<long long>(parameters), config.optimizer.c_str(),
      device.str().c_str(), torch::get_num_threads(),
      group ? (" a rank, " + std::to_string(run.world_size) + " data-parallel ranks").c_str() : "",
      static_cast<long long>(config.epochs), static_cast<long long>(steps_per_epoch),
      method.c_str());

  int64_t start_epoch = 0;
  double best_accuracy = 0.0;
  double train_seconds = 0.0;
  // FLOPs ratio summed over the steps taken: the run's mean FLOPs ratio says how early the cuts
  // came, which is what buys time.
  double flops_ratio_sum = 0.0;
  double resumed_flops_ratio = 1.0;
  // The last test accuracy measured, and the epoch it was measured after (-1: none yet): the
  // summary's when the run resumes after its last epoch, and the export's.
  double test_accuracy = 0.0;
  int64_t test_accuracy_epoch = -1;
  const std::string test_set_name = test_set_of(config);
  if (run.resume && fs::exists(checkpoint_path)) {
    const json extra =
        demon::load_checkpoint(checkpoint_path, *model, optimizer.get(), pruner.get());
    if (extra.at("config") != config.to_json()) {
      throw std::runtime_error("--resume: " + checkpoint_path +
                               " was written with another configuration");
    }
    start_epoch = extra.at("epoch").get<int64_t>() + 1;
    best_accuracy = extra.at("best_test_accuracy");
    train_seconds = extra.at("train_seconds");
    flops_ratio_sum = extra.value("flops_ratio_sum", 0.0);
    resumed_flops_ratio = extra.value("flops_ratio", 1.0);
    test_accuracy = extra.value("test_accuracy", 0.0);
    test_accuracy_epoch = extra.value("test_accuracy_epoch", int64_t{-1});
    truncate_jsonl(metrics_path, "epoch", start_epoch - 1);
    truncate_jsonl(reports_path, "step", start_epoch * steps_per_epoch);
    example_log::info("resumed from %s after epoch %lld", checkpoint_path.c_str(),
                      static_cast<long long>(start_epoch - 1));
  } else if (lead) {
    for (const auto& path : {metrics_path, reports_path})
      fs::remove(path);
  }

  // Figures for dense runs (the pruner keeps its own).
  std::optional<demon::DependencyGraph> dense_graph;
  auto summary_now = [&]() {
    if (pruner)
      return pruner->summary();
    if (!dense_graph)
      dense_graph = discover_quietly(model, train_data.head(2), config);
    return demon::summarize(*dense_graph, *model);
  };

  LossScaler scaler;
  double flops_ratio = pruner ? resumed_flops_ratio : 1.0;
  if (pruner) {
    pruner->on_prune(
        [&](const demon::PruneReport& report) { flops_ratio = report.after.flops_ratio(); });
  }
  const int64_t end_epoch = run.stop_after_epochs > 0
                                ? std::min(config.epochs, start_epoch + run.stop_after_epochs)
                                : config.epochs;
  for (int64_t epoch = start_epoch; epoch < end_epoch; ++epoch) {
    const auto epoch_start = Clock::now();
    auto window_start = Clock::now();
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions(device));
    torch::Tensor correct = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kLong));
    torch::Tensor window_loss = torch::zeros({}, torch::TensorOptions(device));
    torch::Tensor window_correct =
        torch::zeros({}, torch::TensorOptions(device).dtype(torch::kLong));
    int64_t window_images = 0, epoch_images = 0;  // this rank's
    model->train();
    for (int64_t b = 0; b < steps_per_epoch; ++b) {
      const int64_t step = epoch * steps_per_epoch + b;
      const double lr = learning_rate(config, step, steps_per_epoch, total_steps);
      set_learning_rate(*optimizer, lr);
      auto [images, labels] = train_data.batch(epoch, b);  // this rank's share
      const double lambda = pruner ? pruner->current_lambda() : 0.0;
      const double sigma = pruner ? pruner->current_sigma() : 0.0;

      optimizer->zero_grad();
      auto logits = run_model(model, prepare(images, config), config);
      auto loss = torch::cross_entropy_loss(logits, labels);
      const auto backward_loss = config.amp == "fp16" ? scaler.scale(loss) : loss;
      if (pruner) {
        pruner->backward(backward_loss);
      } else {
        backward_loss.backward();
      }
      const bool apply = config.amp != "fp16" || scaler.unscale(*optimizer);
      flops_ratio_sum += flops_ratio;  // the step ran at the FLOPs ratio before its prune event
      if (apply) {
        if (pruner) {
          pruner->step();  // averages the gradients over the ranks first
        } else {
          if (group)
            demon::allreduce_gradients(model->parameters(), *group);
          optimizer->step();
        }
      } else if (pruner) {
        pruner->skip_step();  // the scaler skipped it: schedules and prune events keep the loop's
      }
      {
        torch::NoGradGuard no_grad;
        const auto hits = logits.argmax(1).eq(labels).sum();
        loss_sum += loss.detach();
        correct += hits;
        window_loss += loss.detach();
        window_correct += hits;
        window_images += images.size(0);
        epoch_images += images.size(0);
      }
      if ((b + 1) % config.log_every == 0 || b + 1 == steps_per_epoch) {
        const int64_t seen = (b % config.log_every) + 1;
        const double elapsed = seconds_since(window_start);
        const double per_step = elapsed / static_cast<double>(seen);
        const auto summary = summary_now();
        example_log::info(
            "[epoch %lld/%lld] step %lld/%lld loss %.4f acc %.3f live units %lld/%lld lambda "
            "%.2e sigma %.2e lr %.2e %.0f img/s ETA %s",
            static_cast<long long>(epoch + 1), static_cast<long long>(config.epochs),
            static_cast<long long>(step + 1), static_cast<long long>(total_steps),
            window_loss.item<double>() / static_cast<double>(seen),
            static_cast<double>(window_correct.item<int64_t>()) /
                static_cast<double>(window_images),
            static_cast<long long>(summary.live_units),
            static_cast<long long>(summary.initial_units), lambda, sigma, lr,
            static_cast<double>(seen * config.batch_size) / elapsed,
            duration_text(per_step * static_cast<double>(total_steps - step - 1)).c_str());
        window_loss.zero_();
        window_correct.zero_();
        window_images = 0;
        window_start = Clock::now();
      }
    }
    if (pruner && config.baseline == "slimming" && epoch + 1 == config.slimming_epoch()) {
      pruner->prune_now();  // Network Slimming's one cut; fine-tuning follows
    }
    const double epoch_seconds = seconds_since(epoch_start);
    train_seconds += epoch_seconds;
    const bool last = epoch + 1 == config.epochs;
    if (lead && (last || (epoch + 1) % config.eval_every == 0)) {
      test_accuracy = evaluate(model, test_data, config, device);  // rank 0's BatchNorm statistics
      test_accuracy_epoch = epoch;
    }
    best_accuracy = std::max(best_accuracy, test_accuracy);
    const auto summary = summary_now();
    const int64_t images = steps_per_epoch * config.batch_size;
    const json metrics = {
        {"epoch", epoch},
        {"step", (epoch + 1) * steps_per_epoch},
        {"train_loss", loss_sum.item<double>() / static_cast<double>(steps_per_epoch)},
        {"train_accuracy",
         static_cast<double>(correct.item<int64_t>()) / static_cast<double>(epoch_images)},
        {"test_accuracy", test_accuracy},
        {"lr",
         learning_rate(config, (epoch + 1) * steps_per_epoch - 1, steps_per_epoch, total_steps)},
        {"lambda", pruner ? pruner->current_lambda() : 0.0},
        {"sigma", pruner ? pruner->current_sigma() : 0.0},
        {"live_units", widths_json(summary)},
        {"neural_sparsity", summary.neural_sparsity()},
        {"param_sparsity", summary.parameter_sparsity()},
        {"flops_ratio", summary.flops_ratio()},
        {"mean_flops_ratio", flops_ratio_sum / static_cast<double>((epoch + 1) * steps_per_epoch)},
        {"parameters", summary.parameters},
        {"epoch_seconds", epoch_seconds},
        {"train_seconds", train_seconds},
        {"images_per_second", static_cast<double>(images) / epoch_seconds}};
    if (lead)
      append_line(metrics_path, metrics);
    example_log::info(
        "[epoch %lld/%lld] train loss %.4f acc %.4f, test acc %.4f (best %.4f), "
        "neural sparsity %.3f, parameter sparsity %.3f, FLOPs %.3f, %.1fs",
        static_cast<long long>(epoch + 1), static_cast<long long>(config.epochs),
        metrics["train_loss"].get<double>(), metrics["train_accuracy"].get<double>(), test_accuracy,
        best_accuracy, summary.neural_sparsity(), summary.parameter_sparsity(),
        summary.flops_ratio(), epoch_seconds);
    if (!lead)
      continue;
    demon::save_checkpoint(checkpoint_path, *model, optimizer.get(), pruner.get(),
                           {{"epoch", epoch},
                            {"test_accuracy", test_accuracy},
                            {"test_accuracy_epoch", test_accuracy_epoch},
                            {"test_set", test_set_name},
                            {"best_test_accuracy", best_accuracy},
                            {"train_seconds", train_seconds},
                            {"flops_ratio_sum", flops_ratio_sum},
                            {"flops_ratio", flops_ratio},
                            {"config", config.to_json()}});
  }

  if (end_epoch < config.epochs) {
    example_log::info("stopped after epoch %lld of %lld (--stop-after); continue with --resume",
                      static_cast<long long>(end_epoch), static_cast<long long>(config.epochs));
    return {{"stopped_after_epoch", end_epoch - 1}};
  }
  const auto summary = summary_now();
  if (lead) {
    demon::save_checkpoint(run.out_dir + "/model_final.pt", *model, nullptr, nullptr,
                           {{"config", config.to_json()},
                            {"epoch", config.epochs - 1},
                            {"test_accuracy", test_accuracy},
                            {"test_accuracy_epoch", test_accuracy_epoch},
                            {"test_set", test_set_name}});
  }
  const int64_t trained_images = config.epochs * steps_per_epoch * config.batch_size;
  const json result = {
      {"test_accuracy", test_accuracy},
      {"best_test_accuracy", best_accuracy},
      {"neural_sparsity", summary.neural_sparsity()},
      {"param_sparsity", summary.parameter_sparsity()},
      {"flops_ratio", summary.flops_ratio()},
      {"mean_flops_ratio", flops_ratio_sum / static_cast<double>(total_steps)},
      {"baseline", config.dense ? "dense" : config.baseline},
      {"target", pruner && pruner->budget() ? json(pruner->budget()->target()) : json()},
      {"target_reached_step", pruner && pruner->budget() && pruner->budget()->reached()
                                  ? json(pruner->budget()->reached_at())
                                  : json()},
      {"parameters", summary.parameters},
      {"initial_parameters", summary.initial_parameters},
      {"flops", summary.flops},
      {"initial_flops", summary.initial_flops},
      {"train_seconds", train_seconds},
      {"images_per_second", static_cast<double>(trained_images) / train_seconds},
      {"prune_events", pruner ? pruner->prune_events() : 0},
      {"epochs", config.epochs},
      {"steps", total_steps},
      {"dense", config.dense},
      {"widths", widths_json(summary)},
      {"device", device.str()},
      {"world_size", run.world_size},
      {"threads", torch::get_num_threads()}};
  if (lead)
    write_json(run.out_dir + "/summary.json", result);
  example_log::info(
      "done: test accuracy %.4f (best %.4f), neural sparsity %.3f, parameter "
      "sparsity %.3f, FLOPs %.3f, %.0fs training; results in %s",
      test_accuracy, best_accuracy, summary.neural_sparsity(), summary.parameter_sparsity(),
      summary.flops_ratio(), train_seconds, run.out_dir.c_str());
  return result;
}

namespace {

// A checkpoint loaded into the model built from `config`, with the configured test data (the
// synthetic set without a data dir) and the extra record the run saved with it.
struct LoadedCheckpoint {
  ResNet18 model{nullptr};
  std::unique_ptr<DevicePipeline> test_data;
  demon::ModelSummary summary;
  json extra;
};

LoadedCheckpoint load_for_inspection(const TrainConfig& config, const std::string& checkpoint) {
  use_threads(config);
  const torch::Device device = device_of(config);
  auto [train_set, test_set] = load_data(config);
  LoadedCheckpoint loaded;
  loaded.test_data = std::make_unique<DevicePipeline>(test_set, device, config.eval_batch_size,
                                                      false, false, config.seed);
  loaded.model = build_model(config, device);
  const auto sample = loaded.test_data->head(2);
  const auto dense =
      demon::summarize(discover_quietly(loaded.model, sample, config), *loaded.model);
  loaded.extra = demon::load_checkpoint(checkpoint, *loaded.model);
  loaded.summary =
      demon::summarize(discover_quietly(loaded.model, sample, config), *loaded.model, &dense);
  return loaded;
}

}  // namespace

json evaluate_checkpoint(const TrainConfig& config, const std::string& checkpoint,
                         const std::string& out_dir) {
  auto loaded = load_for_inspection(config, checkpoint);
  const auto& summary = loaded.summary;
  const double accuracy = evaluate(loaded.model, *loaded.test_data, config, device_of(config));
  const json result = {{"checkpoint", checkpoint},
                       {"test_accuracy", accuracy},
                       {"parameters", summary.parameters},
                       {"param_sparsity", summary.parameter_sparsity()},
                       {"flops_ratio", summary.flops_ratio()},
                       {"widths", widths_json(summary)}};
  example_log::info(
      "eval %s: test accuracy %.4f, %lld parameters (%.3f sparsity), FLOPs %.3f of "
      "the dense model",
      checkpoint.c_str(), accuracy, static_cast<long long>(summary.parameters),
      summary.parameter_sparsity(), summary.flops_ratio());
  if (!out_dir.empty()) {
    fs::create_directories(out_dir);
    write_json(out_dir + "/eval.json", result);
  }
  return result;
}

json export_checkpoint(const TrainConfig& config, const std::string& checkpoint,
                       const std::string& out_dir) {
  auto loaded = load_for_inspection(config, checkpoint);
  auto& model = loaded.model;
  auto& test_data = *loaded.test_data;
  const auto& summary = loaded.summary;

  // A check batch: the first test images, and the logits of the C++ model in float32, eval mode.
  auto [images, labels] = test_data.batch(0, 0);
  const int64_t count = std::min<int64_t>(64, images.size(0));
  images = images.slice(0, 0, count);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    logits = model->forward(images).to(torch::kFloat);
  }
  json description = {{"architecture", "resnet18_cifar10"},
                      {"checkpoint", checkpoint},
                      {"num_classes", model->options.num_classes()},
                      {"width", config.width},
                      {"normalization",
                       {{"mean", {kCifarMean[0], kCifarMean[1], kCifarMean[2]}},
                        {"std", {kCifarStd[0], kCifarStd[1], kCifarStd[2]}}}},
                      {"check_images", count},
                      {"parameters", summary.parameters},
                      {"flops_ratio", summary.flops_ratio()},
                      {"widths", widths_json(summary)}};
  // Export evaluates nothing: the accuracy is the one the run measured, after the checkpoint's own
  // epoch, on the test set it names, so that a check elsewhere compares like with like.
  std::string accuracy_note =
      "no test accuracy (the checkpoint records none measured after its own epoch)";
  const json& extra = loaded.extra;
  if (extra.is_object() && extra.contains("test_accuracy") && extra["test_accuracy"].is_number() &&
      extra.contains("test_set") && extra["test_set"].is_string() && extra.contains("epoch") &&
      extra.value("test_accuracy_epoch", int64_t{-1}) >= 0 &&
      extra.value("test_accuracy_epoch", int64_t{-1}) == extra["epoch"]) {
    const std::string test_set = extra["test_set"];
    description["test_accuracy"] = extra["test_accuracy"];
    description["test_accuracy_on"] = test_set;
    accuracy_note = "test accuracy " + std::to_string(extra["test_accuracy"].get<double>()) +
                    " (measured by the run on its " + test_set + " test set)";
  }
  fs::create_directories(out_dir);
  demon::save_safetensors(out_dir + "/model.safetensors", pytorch_state(model),
                          {{"format", "pt"}, {"architecture", "resnet18_cifar10"}});
  demon::save_safetensors(
      out_dir + "/check.safetensors",
      {{"input", images}, {"labels", labels.slice(0, 0, count)}, {"logits", logits}});
  write_json(out_dir + "/model.json", description);
  example_log::info(
      "exported %s to %s: model.safetensors (%lld parameters), model.json, check.safetensors (%lld "
      "images and their logits); %s",
      checkpoint.c_str(), out_dir.c_str(), static_cast<long long>(summary.parameters),
      static_cast<long long>(count), accuracy_note.c_str());
  return description;
}

}  // namespace resnet18_cifar10
