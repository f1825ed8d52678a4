#pragma once
// What DemonPruner::set_process_group takes, without c10d's headers: a program that trains on
// one process never compiles them. The functions that make groups and run collectives are in
// demon/distributed.h.

#include <c10/util/intrusive_ptr.h>
#include <torch/arg.h>
#include <torch/version.h>

#include <cstdint>

namespace c10d {
class Backend;
class ProcessGroup;
}  // namespace c10d

namespace demon {

/// What runs demon's collectives: c10d's ProcessGroupGloo or ProcessGroupNCCL, made by
/// make_gloo_group()/make_nccl_group() (distributed.h) or by the program itself. It is
/// c10d::ProcessGroup on LibTorch 1.13 and c10d::Backend on 2.x (where a c10d::ProcessGroup hands
/// out its backend per device: `group->getBackend(c10::DeviceType::CPU)`). The one LibTorch
/// version test outside the library's compatibility header: a public name must be chosen here.
#if TORCH_VERSION_MAJOR >= 2
using ProcessGroup = c10d::Backend;
#else
using ProcessGroup = c10d::ProcessGroup;
#endif

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

}  // namespace demon
