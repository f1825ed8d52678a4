#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "demon/distributed.h"

namespace demon::detail {

/// What DemonPruner does on N ranks, in the order a step needs it: average the gradients, take
/// the largest activity peak any rank saw, and make sure every rank is about to cut the same
/// units. Every call is a collective: all ranks make it at the same point of the loop.
class DataParallel {
 public:
  DataParallel(c10::intrusive_ptr<ProcessGroup> group, DataParallelOptions options);

  int rank() const;
  int world_size() const;
  ProcessGroup& group() { return *group_; }
  const DataParallelOptions& options() const noexcept { return options_; }

  /// allreduce_gradients over the optimizer's parameters, group by group.
  void average_gradients(torch::optim::Optimizer& optimizer);
  /// Per unit, the largest value over the ranks (a unit active on any rank's data is active).
  /// `device` is where the collective runs (NCCL needs CUDA tensors).
  void max_over_ranks(std::vector<double>& values, const torch::Device& device);
  /// Throws demon::RuntimeError, on every rank, when the ranks' `units` differ.
  void require_same_units(const std::vector<int64_t>& units, int64_t step,
                          const torch::Device& device);

 private:
  c10::intrusive_ptr<ProcessGroup> group_;
  DataParallelOptions options_;
};

}  // namespace demon::detail
