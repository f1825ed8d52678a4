#pragma once

#include <c10/util/intrusive_ptr.h>
#include <torch/arg.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "demon/distributed.h"

namespace demon {

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
