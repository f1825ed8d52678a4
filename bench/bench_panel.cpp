// bench_panel: DemP on models its defaults were not tuned on, each beside its dense twin in the
// same loop, on CIFAR-10 and on a smaller task derived from it. One JSON row per run.
//
//   bench_panel --data-dir /data/cifar10 --model vgg --task cifar10 --mode demp --out rows.jsonl
//   bench_panel --model mlp --task small --mode demp --demon '{"target": 0.5}' --seed 1
//
// Modes: "dense" trains the model as it is (a pruner that never prunes and has no regularizer
// or noise measures its FLOPs); "demp" trains it under DemonPruner with the defaults, changed by
// --demon (DemonOptions keys). Tasks: "cifar10" (50,000 training images at 32×32) and "small"
// (the first 500 training images of each class, 16×16 by 2×2 averaging: fewer samples and less
// detail, so that models under-fit as users' models often do). Both test on the 10,000 test
// images at the task's resolution. Without --data-dir, a synthetic CIFAR-shaped set stands in
// (for the test of this program, not for results).
#include <demon/demon.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "cifar10.h"
#include "panel_models.h"
#include "synthetic_data.h"

namespace {

struct Task {
  torch::Tensor train_images, train_labels, test_images, test_labels;  // float, normalized
};

torch::Tensor normalized(const torch::Tensor& images) {
  const auto mean = torch::tensor({0.4914, 0.4822, 0.4465}).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.2470, 0.2435, 0.2616}).view({1, 3, 1, 1});
  return (images.to(torch::kFloat) / 255.0 - mean) / std;
}

Task make_task(const std::string& name, const std::string& data_dir, uint64_t seed) {
  const bool real = !data_dir.empty();
  auto train = real ? resnet18_cifar10::read_cifar10(data_dir, true)
                    : resnet18_cifar10::make_synthetic_cifar10(2000, seed, 0);
  auto test = real ? resnet18_cifar10::read_cifar10(data_dir, false)
                   : resnet18_cifar10::make_synthetic_cifar10(1000, seed, 1);
  Task task{normalized(train.images), train.labels, normalized(test.images), test.labels};
  if (name == "small") {
    // The first 500 (synthetic: 50) images of each class, in the set's order.
    const int64_t per_class = real ? 500 : 50;
    std::vector<int64_t> keep;
    std::vector<int64_t> taken(10, 0);
    const auto labels = task.train_labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < labels.size(0); ++i) {
      if (taken[static_cast<size_t>(labels[i])]++ < per_class) {
        keep.push_back(i);
      }
    }
    const auto index = torch::tensor(keep, torch::kLong);
    task.train_images = torch::avg_pool2d(task.train_images.index_select(0, index), 2);
    task.train_labels = task.train_labels.index_select(0, index);
    task.test_images = torch::avg_pool2d(task.test_images, 2);
  } else if (name != "cifar10") {
    throw std::invalid_argument("unknown task \"" + name + "\" (cifar10 or small)");
  }
  return task;
}

double test_accuracy(const panel::PanelModel& model, const Task& task) {
  model.module->eval();
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  const int64_t n = task.test_labels.size(0);
  for (int64_t start = 0; start < n; start += 1000) {
    const int64_t end = std::min(n, start + 1000);
    correct += model.forward(task.test_images.slice(0, start, end))
                   .argmax(1)
                   .eq(task.test_labels.slice(0, start, end))
                   .sum()
                   .item<int64_t>();
  }
  model.module->train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

// Test accuracy of the training-mode forward (each batch normalized by its own statistics, and
// dropout where the model has it), the running statistics left as they were: where it stays up
// while test_accuracy() falls, the network is sound and only its running statistics are off
// (eval-mode collapse).
double batch_statistics_accuracy(const panel::PanelModel& model, const Task& task) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> saved;
  for (const auto& buffer : model.module->buffers())
    saved.push_back(buffer.clone());
  int64_t correct = 0;
  const int64_t n = task.test_labels.size(0);
  for (int64_t start = 0; start < n; start += 1000) {
    const int64_t end = std::min(n, start + 1000);
    correct += model.forward(task.test_images.slice(0, start, end))
                   .argmax(1)
                   .eq(task.test_labels.slice(0, start, end))
                   .sum()
                   .item<int64_t>();
  }
  auto buffers = model.module->buffers();
  for (size_t i = 0; i < buffers.size(); ++i)
    buffers[i].copy_(saved[i]);
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_panel: DemP and its dense twin on a panel of models"};
  std::string data_dir, model_name = "quickstart", task_name = "small", mode = "demp", demon_json,
                        out, label;
  int64_t epochs = 10, batch_size = 64, threads = 1;
  uint64_t seed = 0;
  app.add_option("--data-dir", data_dir, "CIFAR-10 binary release; without it synthetic data");
  app.add_option("--model", model_name, "panel model")->check(CLI::IsMember(panel::model_names()));
  app.add_option("--task", task_name, "cifar10 or small")
      ->check(CLI::IsMember({"cifar10", "small"}));
  app.add_option("--mode", mode, "dense or demp")->check(CLI::IsMember({"dense", "demp"}));
  app.add_option("--demon", demon_json, "DemonOptions keys over the defaults, as a JSON object");
  app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "images per step")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "initialization, data order and noise");
  app.add_option("--threads", threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--label", label, "a name for the row (default: the mode)");
  app.add_option("--out", out, "append the run's row (one JSON line) to this file");
  CLI11_PARSE(app, argc, argv);

  torch::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(seed);
  const Task task = make_task(task_name, data_dir, seed);
  const int64_t side = task.train_images.size(2);
  panel::PanelModel model = panel::make_model(model_name, side);
  const panel::Recipe& recipe = model.recipe;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (recipe.optimizer == "sgd") {
    optimizer = std::make_unique<torch::optim::SGD>(
        model.module->parameters(),
        torch::optim::SGDOptions(recipe.lr).momentum(0.9).weight_decay(recipe.weight_decay));
  } else {
    optimizer = std::make_unique<torch::optim::AdamW>(
        model.module->parameters(),
        torch::optim::AdamWOptions(recipe.lr).weight_decay(recipe.weight_decay));
  }

  const int64_t train_size = task.train_labels.size(0);
  const int64_t steps_per_epoch = demon::batches_per_epoch(train_size, batch_size, true);
  const nlohmann::json given =
      demon_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(demon_json);
  nlohmann::json overrides = given;
  if (mode == "dense") {
    // A pruner that only measures: no pressure, no noise, no cut.
    overrides.update({{"regularizer", "none"},
                      {"noise", false},
                      {"prune_at_end", false},
                      {"prune_start", epochs * steps_per_epoch + 1}});
  }
  overrides.update({{"epochs", epochs}, {"steps_per_epoch", steps_per_epoch}, {"seed", seed}});
  demon::DemonPruner pruner(model.module, *optimizer, demon::DemonOptions::from_json(overrides));
  pruner.set_forward(model.forward);

  // The FLOPs ratio in force at each step, for the run's mean.
  double flops_ratio_steps = 0.0;
  int64_t ratio_since = 0;
  double ratio_now = 1.0;
  nlohmann::json lambda_by_event = nlohmann::json::array();  // [step, λ after the event]
  pruner.on_prune([&](const demon::PruneReport& report) {
    lambda_by_event.push_back({report.step, report.lambda_after});
    flops_ratio_steps += ratio_now * static_cast<double>(report.step - ratio_since);
    ratio_since = report.step;
    ratio_now = report.after.flops_ratio();
  });

  if (pruner.options().death_check() != demon::DeathCheck::kTrain) {
    // The eval-mode pass of the death check reads the first four training batches.
    std::vector<torch::Tensor> batches;
    for (int64_t b = 0; b < 4 && (b + 1) * batch_size <= train_size; ++b)
      batches.push_back(task.train_images.slice(0, b * batch_size, (b + 1) * batch_size));
    pruner.set_death_check(batches);
  }

  std::vector<double> accuracies, batch_statistics_accuracies, losses;
  const int64_t total_steps = epochs * steps_per_epoch;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const auto order = torch::randperm(train_size, torch::kLong);
    torch::Tensor loss_sum = torch::zeros({});
    for (int64_t b = 0; b < steps_per_epoch; ++b) {
      const auto index = order.slice(0, b * batch_size, (b + 1) * batch_size);
      auto images = task.train_images.index_select(0, index);
      // Random horizontal flips.
      const auto flip = torch::rand({images.size(0), 1, 1, 1}) < 0.5;
      images = torch::where(flip, images.flip({3}), images);
      const auto labels = task.train_labels.index_select(0, index);
      const double lr = panel::learning_rate(recipe, pruner.current_step(), total_steps);
      for (auto& group : optimizer->param_groups()) {
        group.options().set_lr(lr);
      }
      pruner.zero_grad();
      auto loss = torch::cross_entropy_loss(model.forward(images), labels);
      pruner.backward(loss);
      pruner.step();
      loss_sum += loss.detach();
    }
    losses.push_back(loss_sum.item<double>() / static_cast<double>(steps_per_epoch));
    accuracies.push_back(test_accuracy(model, task));
    batch_statistics_accuracies.push_back(batch_statistics_accuracy(model, task));
    std::cerr << model_name << " " << task_name << " " << (label.empty() ? mode : label)
              << " epoch " << epoch + 1 << "/" << epochs << ": loss " << losses.back()
              << ", test accuracy " << accuracies.back() << " (batch statistics "
              << batch_statistics_accuracies.back() << "), FLOPs " << pruner.summary().flops_ratio()
              << "\n";
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  flops_ratio_steps += ratio_now * static_cast<double>(total_steps - ratio_since);

  const auto summary = pruner.summary();
  int64_t chance_epochs = 0;
  for (double accuracy : accuracies)
    chance_epochs += accuracy < 0.15;  // 10 classes: chance is 0.10
  // The command line as a shell would take it back.
  std::string command;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,") !=
        std::string::npos) {
      std::string quoted = "'";
      for (char c : arg)
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      arg = quoted + "'";
    }
    command += (i == 0 ? "" : " ") + arg;
  }
  nlohmann::json row = {
      {"command", command},
      {"label", label.empty() ? mode : label},
      {"model", model_name},
      {"task", task_name},
      {"data", data_dir.empty() ? "synthetic" : "cifar10"},
      {"mode", mode},
      {"seed", seed},
      {"epochs", epochs},
      {"batch_size", batch_size},
      {"steps", total_steps},
      {"threads", threads},
      {"optimizer", recipe.optimizer},
      {"lr", recipe.lr},
      {"lr_schedule", recipe.lr_schedule},
      {"demon", pruner.options().to_json()},
      {"demon_overrides", given},
      {"lambda_peak", mode == "dense" ? 0.0 : pruner.lambda_peak()},
      {"gradient_scale", pruner.gradient_scale() ? pruner.gradient_scale()->value() : std::nan("")},
      {"test_accuracy", accuracies.back()},
      {"test_accuracy_by_epoch", accuracies},
      {"batch_statistics_accuracy_by_epoch", batch_statistics_accuracies},
      {"train_loss_by_epoch", losses},
      {"chance_epochs", chance_epochs},
      {"parameters", summary.parameters},
      {"initial_parameters", summary.initial_parameters},
      {"flops", summary.flops},
      {"initial_flops", summary.initial_flops},
      {"flops_ratio", summary.flops_ratio()},
      {"mean_flops_ratio", flops_ratio_steps / static_cast<double>(total_steps)},
      {"prune_events", pruner.prune_events()},
      {"lambda_by_event", lambda_by_event},
      {"health_events", summary.health_events.size()},
      {"seconds", seconds},
  };
  if (const char* commit = std::getenv("DEMON_COMMIT")) {
    row["commit"] = commit;
  }
  if (const char* machine = std::getenv("DEMON_MACHINE")) {
    row["machine"] = machine;
  }
  std::cout << row.dump() << "\n";
  if (!out.empty()) {
    // One write of the whole line: runs side by side append to the same file.
    std::ofstream(out, std::ios::app) << row.dump() + "\n" << std::flush;
  }
  return 0;
}
