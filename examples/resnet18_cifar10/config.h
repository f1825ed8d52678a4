#pragma once

// The example's configuration: what to train, how, where. JSON in configs/, overridden by the
// command line; the effective configuration is written to the output directory.

#include <demon/options.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace resnet18_cifar10 {

struct TrainConfig {
  // Data. No data_dir: a synthetic CIFAR-shaped set of the sizes below.
  std::string data_dir;
  int64_t synthetic_train = 10000;
  int64_t synthetic_test = 2000;
  bool augment = true;

  // Model.
  double width = 1.0;
  bool selection_shortcuts = true;

  // Optimization. lr_schedule: "step" (× lr_decay_factor at each of lr_decay_epochs),
  // "one_cycle" (optax semantics over the whole run) or "constant".
  int64_t epochs = 250;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 512;
  std::string optimizer = "adamw";  // "adamw" or "sgd" (momentum, coupled weight decay)
  double lr = 5e-3;
  double weight_decay = 5e-4;
  double momentum = 0.9;
  std::string lr_schedule = "step";
  std::vector<int64_t> lr_decay_epochs = {77, 154, 231};
  double lr_decay_factor = 0.2;

  // DemP. dense: train without it (the baseline, same harness). The demon object holds
  // DemonOptions keys; total_steps is set from epochs × batches per epoch unless given.
  bool dense = false;
  // "demp", or "slimming": Network Slimming (Liu et al., 2017) in the same harness: the demon
  // object's Lasso on BatchNorm scales at a constant λ, no noise, until the end of epoch
  // slim_epoch (0: half the epochs), then one cut of the slim_fraction of units with the
  // smallest |γ| (ranked over the whole model), then fine-tuning without pressure.
  std::string baseline = "demp";
  int64_t slim_epoch = 0;
  double slim_fraction = 0.5;
  nlohmann::json demon = nlohmann::json::object();
  // Eval-mode death check (death_check "eval"/"both"): this many unaugmented training batches.
  int64_t death_check_batches = 3;
  int64_t death_check_batch_size = 512;

  // Running.
  std::string device = "cpu";  // "cpu" or "cuda"
  std::string amp = "none";    // CUDA autocast: "none", "bf16", "fp16" (with loss scaling)
  bool channels_last = false;  // CUDA: NHWC activations and weights
  bool cudnn_benchmark =
      false;  // CUDA: let cuDNN time its algorithms per shape (re-tunes after cuts)
  uint64_t seed = 0;
  int64_t threads = 0;  // CPU intra-op threads; 0 = every core (unless OMP_NUM_THREADS is set)
  int64_t log_every = 50;
  int64_t eval_every =
      1;  // epochs between test-set evaluations (the last epoch is always evaluated)

  /// Every key above; the demon object as given.
  nlohmann::json to_json() const;
  /// Starts from the defaults and applies `json`'s keys; unknown keys and wrong types throw
  /// std::invalid_argument naming the key. Also checks the demon object.
  static TrainConfig from_json(const nlohmann::json& json);
  static TrainConfig load(const std::string& path);
  /// Throws std::invalid_argument naming the first invalid value.
  void validate() const;
  /// The DemonOptions of this run: the demon object with total_steps filled in (and, for the
  /// slimming baseline, its schedule and criterion).
  demon::DemonOptions demon_options(int64_t total_steps, int64_t steps_per_epoch = 1) const;
  /// The epoch after which the slimming baseline cuts.
  int64_t slimming_epoch() const {
    return slim_epoch > 0 ? slim_epoch : std::max<int64_t>(1, epochs / 2);
  }
};

}  // namespace resnet18_cifar10
