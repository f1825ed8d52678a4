#pragma once
// Data-parallel training: making c10d process groups (Gloo, NCCL) and the stores their ranks meet
// through, and the collectives DemonPruner::set_process_group runs. The one public header that
// includes c10d's: demon/demon.h and demon/pruner.h leave it out, so a program that trains on one
// process does not compile them; include it where the program makes or uses a group.

#include <c10/util/intrusive_ptr.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "demon/data_parallel_options.h"

namespace demon {

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

/// How a process group is made. The timeout bounds every collective: a rank that stops
/// answering (hung, or dead without its sockets closing) makes the others throw after it.
struct ProcessGroupOptions {
  /// Gloo: the address this rank listens on for its peers; empty resolves the host's name (and
  /// falls back to loopback), as PyTorch does.
  TORCH_ARG(std::string, hostname) = "";
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::minutes(5);
  /// Gloo: threads that run collectives.
  TORCH_ARG(int, threads) = 2;
};

/// A store the ranks meet through: a file that every rank can open (one machine, or a shared
/// file system). The file must not exist before the run, or be left by a finished one.
c10::intrusive_ptr<c10d::Store> make_file_store(const std::string& path, int world_size);

/// A TCP store: rank 0 serves it at `port`, the others connect to `host`.
c10::intrusive_ptr<c10d::Store> make_tcp_store(
    const std::string& host, uint16_t port, int rank, int world_size,
    std::chrono::milliseconds timeout = std::chrono::minutes(5));

/// A Gloo group (CPU tensors, and CUDA ones through host copies) of `world_size` ranks. Throws
/// demon::RuntimeError when demon was built without Gloo's headers (Debian: libgloo-dev), and
/// demon::ValueError for a rank outside [0, world_size).
c10::intrusive_ptr<ProcessGroup> make_gloo_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                 int rank, int world_size,
                                                 ProcessGroupOptions options = {});

/// An NCCL group (CUDA tensors): one GPU per rank, the current CUDA device. Throws
/// demon::RuntimeError when demon was built without NCCL (a LibTorch without CUDA, or no nccl.h).
c10::intrusive_ptr<ProcessGroup> make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                 int rank, int world_size,
                                                 ProcessGroupOptions options = {});

/// Whether make_gloo_group / make_nccl_group work in this build.
bool has_gloo() noexcept;
bool has_nccl() noexcept;

}  // namespace demon
