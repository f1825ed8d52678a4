#pragma once

#include <c10/util/intrusive_ptr.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "demon/detail/torch_compat.h"

namespace demon {

/// What runs demon's collectives: c10d's ProcessGroupGloo or ProcessGroupNCCL, made by
/// make_gloo_group()/make_nccl_group() (process_group.h) or by the program itself. It is
/// c10d::ProcessGroup on LibTorch 1.13 and c10d::Backend on 2.x (where a c10d::ProcessGroup hands
/// out its backend per device: `group->getBackend(c10::DeviceType::CPU)`).
using ProcessGroup = detail::CollectiveGroup;

/// How DemonPruner::set_process_group keeps N data-parallel replicas one model.
struct DataParallelOptions {
  /// Gradients are all-reduced in buckets of about this many bytes, one collective per bucket,
  /// all in flight together.
  TORCH_ARG(int64_t, bucket_bytes) = int64_t{25} << 20;
  /// Copy rank 0's parameters and buffers to every rank when the group is set, so replicas that
  /// were initialized differently start as one.
  TORCH_ARG(bool, broadcast_parameters) = true;
  /// Before each prune event the ranks compare the units they are about to cut (one small
  /// collective); a difference means the replicas diverged, and the event throws before anything
  /// is cut.
  TORCH_ARG(bool, check_agreement) = true;
};

/// Averages the gradients of `parameters` over the group's ranks, in place, with bucketed
/// all-reduces. A parameter with a gradient on some rank only gets zeros on the others first
/// (one small collective decides), so every rank steps the same parameters. Every rank must call
/// it with the same parameters in the same order. Throws demon::RuntimeError naming the rank when
/// a collective fails (another rank died, or the group's timeout ran out), demon::ValueError
/// for sparse gradients.
void allreduce_gradients(const std::vector<torch::Tensor>& parameters, ProcessGroup& group,
                         int64_t bucket_bytes = int64_t{25} << 20);

/// Copies rank `root`'s values of `tensors` (same shapes on every rank) to all ranks, in place.
void broadcast_tensors(const std::vector<torch::Tensor>& tensors, ProcessGroup& group,
                       int root = 0);

/// broadcast_tensors of every parameter and buffer of `module`.
void broadcast_module(torch::nn::Module& module, ProcessGroup& group, int root = 0);

}  // namespace demon
