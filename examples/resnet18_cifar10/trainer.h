#pragma once

// Training and evaluation runs of the example, with everything they write to disk:
//   config.json          the effective configuration
//   metrics.jsonl        one JSON object per epoch
//   prune_reports.jsonl  one JSON object per prune event (DemP runs)
//   checkpoint.pt        after every epoch (atomic; --resume continues from it)
//   model_final.pt       the trained (pruned) model, for --eval-only
//   summary.json         the run's results

#include <nlohmann/json.hpp>

#include <string>

#include "config.h"

namespace resnet18_cifar10 {

struct RunOptions {
  std::string out_dir = "out";
  /// Continue from out_dir/checkpoint.pt when it exists (same configuration required).
  bool resume = false;
  /// Stop after this many epochs in this invocation (0: run to the end), leaving a checkpoint to
  /// --resume from: long runs in chunks, e.g. on preemptible machines.
  int64_t stop_after_epochs = 0;
  /// Data parallel: this process is rank `rank` of `world_size` (scripts/launch.sh starts them),
  /// each training on its share of every batch; rank 0 alone logs, evaluates and writes files.
  int world_size = 1;
  int rank = 0;
  /// Where the ranks meet: a file all of them can open, or else rank 0's address and port.
  std::string store_file;
  std::string master_addr;
  int master_port = 29500;
  /// Gloo: the address this rank listens on (empty: the host name's; one machine: 127.0.0.1).
  std::string bind_addr;
};

/// Trains as configured; returns what summary.json holds.
nlohmann::json train(const TrainConfig& config, const RunOptions& run);

/// Loads `checkpoint` into a dense model built from `config` (the width must match the run that
/// wrote it), evaluates it on the test set and returns (and, with an out_dir, writes eval.json)
/// its accuracy, size and FLOPs.
nlohmann::json evaluate_checkpoint(const TrainConfig& config, const std::string& checkpoint,
                                   const std::string& out_dir);

/// Loads `checkpoint` as evaluate_checkpoint() does, without evaluating it, and writes, to
/// out_dir, model.safetensors (the weights and buffers under PyTorch names), model.json (widths,
/// normalization, and the test accuracy the run measured after the checkpoint's epoch with the
/// test set it used, if it measured one then) and check.safetensors (the first test images of
/// the configured data, the synthetic set where there is no CIFAR-10, and the model's logits on
/// them), which
/// tools/demon_to_pytorch.py loads into PyTorch and checks.
nlohmann::json export_checkpoint(const TrainConfig& config, const std::string& checkpoint,
                                 const std::string& out_dir);

}  // namespace resnet18_cifar10
