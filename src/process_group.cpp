#include "demon/distributed.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <stdexcept>
#include <string>

#include "demon/errors.h"

// Gloo's and NCCL's process groups need those libraries' headers, which not every LibTorch
// install carries; the build defines these when it found them (src/CMakeLists.txt).
#if DEMON_HAS_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if DEMON_HAS_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace demon {
namespace {

void check_rank(const char* function, int rank, int world_size) {
  if (world_size < 1) {
    throw ValueError(std::string("demon::") + function + ": world_size must be >= 1, got " +
                     std::to_string(world_size));
  }
  if (rank < 0 || rank >= world_size) {
    throw ValueError(std::string("demon::") + function + ": rank must be in [0, " +
                     std::to_string(world_size) + "), got " + std::to_string(rank));
  }
}

void check_store(const char* function, const c10::intrusive_ptr<c10d::Store>& store) {
  if (!store)
    throw ValueError(std::string("demon::") + function + ": the store is null");
}

}  // namespace

c10::intrusive_ptr<c10d::Store> make_file_store(const std::string& path, int world_size) {
  check_rank("make_file_store", 0, world_size);
  if (path.empty())
    throw ValueError("demon::make_file_store: the path is empty");
  return c10::make_intrusive<c10d::FileStore>(path, world_size);
}

c10::intrusive_ptr<c10d::Store> make_tcp_store(const std::string& host, uint16_t port, int rank,
                                               int world_size, std::chrono::milliseconds timeout) {
  check_rank("make_tcp_store", rank, world_size);
  c10d::TCPStoreOptions options;
  options.port = port;
  options.isServer = rank == 0;
  options.numWorkers = static_cast<size_t>(world_size);
  options.waitWorkers = true;
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

bool has_gloo() noexcept {
  return DEMON_HAS_GLOO;
}

bool has_nccl() noexcept {
  return DEMON_HAS_NCCL;
}

c10::intrusive_ptr<ProcessGroup> make_gloo_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                 int rank, int world_size,
                                                 ProcessGroupOptions options) {
  check_rank("make_gloo_group", rank, world_size);
  check_store("make_gloo_group", store);
  if (options.threads() < 1) {
    throw ValueError("demon::make_gloo_group: threads must be >= 1, got " +
                     std::to_string(options.threads()));
  }
#if DEMON_HAS_GLOO
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.timeout());
  gloo_options->devices.push_back(
      options.hostname().empty()
          ? c10d::ProcessGroupGloo::createDefaultDevice()
          : c10d::ProcessGroupGloo::createDeviceForHostname(options.hostname()));
  gloo_options->threads = options.threads();
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, gloo_options);
#else
  throw RuntimeError(
      "demon::make_gloo_group: this demon was built without Gloo's headers (Debian: "
      "libgloo-dev); install them and rebuild demon");
#endif
}

c10::intrusive_ptr<ProcessGroup> make_nccl_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                 int rank, int world_size,
                                                 ProcessGroupOptions options) {
  check_rank("make_nccl_group", rank, world_size);
  check_store("make_nccl_group", store);
#if DEMON_HAS_NCCL
  auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
  nccl_options->timeout = options.timeout();
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, nccl_options);
#else
  (void)options;
  throw RuntimeError(
      "demon::make_nccl_group: this demon was built without NCCL (it needs a LibTorch with "
      "CUDA and nccl.h)");
#endif
}

}  // namespace demon
