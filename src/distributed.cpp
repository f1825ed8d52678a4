#include "demon/distributed.h"

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "demon/errors.h"
#include "detail/data_parallel.h"

namespace demon {
namespace {

std::string where(ProcessGroup& group) {
  return "rank " + std::to_string(group.getRank()) + " of " + std::to_string(group.getSize());
}

// Waits for a collective; a failure (a peer's sockets closed, the group's timeout) becomes an
// error that says which collective and which rank, with c10d's reason.
template <typename WorkPtr>
void wait_for(const WorkPtr& work, ProcessGroup& group, const std::string& what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    throw RuntimeError("demon: the data-parallel " + what + " failed on " + where(group) +
                       " (another rank died, stopped answering within the group's "
                       "timeout, or left the loop early): " +
                       e.what());
  }
}

template <typename Launch>
auto launch(Launch&& start, ProcessGroup& group, const std::string& what) {
  try {
    return start();
  } catch (const std::exception& e) {
    throw RuntimeError("demon: the data-parallel " + what + " could not start on " + where(group) +
                       ": " + e.what());
  }
}

c10d::AllreduceOptions reduce(c10d::ReduceOp::RedOpType op) {
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp(op);
  return options;
}

// One 64-bit fingerprint of a list of unit ids (FNV-1a), kept below 2^62 so that negating it
// for a MIN through MAX stays in range.
int64_t fingerprint(const std::vector<int64_t>& units) {
  uint64_t hash = 1469598103934665603ULL;
  for (int64_t unit : units) {
    hash ^= static_cast<uint64_t>(unit);
    hash *= 1099511628211ULL;
  }
  return static_cast<int64_t>(hash >> 2);
}

}  // namespace

void allreduce_gradients(const std::vector<torch::Tensor>& parameters, ProcessGroup& group,
                         int64_t bucket_bytes) {
  if (bucket_bytes < 1) {
    throw ValueError("demon::allreduce_gradients: bucket_bytes must be >= 1, got " +
                     std::to_string(bucket_bytes));
  }
  if (parameters.empty())
    return;
  torch::NoGradGuard no_grad;
  const int size = group.getSize();
  // Which parameters have a gradient on any rank: those all ranks reduce.
  auto has_grad = torch::zeros({static_cast<int64_t>(parameters.size())},
                               torch::TensorOptions().dtype(torch::kFloat));
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& grad = parameters[i].grad();
    if (grad.defined() && grad.is_sparse()) {
      throw ValueError("demon::allreduce_gradients: parameter " + std::to_string(i) +
                       " has a sparse gradient; data-parallel demon averages dense gradients only");
    }
    if (grad.defined())
      has_grad[static_cast<int64_t>(i)] = 1.0f;
  }
  has_grad = has_grad.to(parameters.front().device());
  {
    std::vector<torch::Tensor> tensors{has_grad};
    auto work = launch([&] { return group.allreduce(tensors, reduce(c10d::ReduceOp::MAX)); }, group,
                       "gradient all-reduce");
    wait_for(work, group, "gradient all-reduce");
  }
  const auto any_rank = has_grad.to(torch::kCPU);
  const auto* flags = any_rank.data_ptr<float>();

  // Buckets of gradients of one device and dtype, in parameter order.
  struct Bucket {
    std::vector<torch::Tensor> grads;
    int64_t bytes = 0;
  };
  std::map<std::pair<std::string, c10::ScalarType>, std::vector<Bucket>> by_kind;
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (flags[i] == 0.0f)
      continue;
    auto param = parameters[i];
    if (!param.grad().defined())
      param.mutable_grad() = torch::zeros_like(param);
    const auto& grad = param.grad();
    auto& buckets = by_kind[{grad.device().str(), grad.scalar_type()}];
    const int64_t bytes = grad.numel() * static_cast<int64_t>(grad.element_size());
    if (buckets.empty() ||
        (buckets.back().bytes > 0 && buckets.back().bytes + bytes > bucket_bytes))
      buckets.emplace_back();
    buckets.back().grads.push_back(grad);
    buckets.back().bytes += bytes;
  }
  // Launch every bucket, then wait: the group works on one while the next is flattened. The
  // buffers stay alive here until their collective is done.
  using WorkPtr = decltype(std::declval<ProcessGroup&>().allreduce(
      std::declval<std::vector<torch::Tensor>&>(), c10d::AllreduceOptions()));
  std::vector<std::pair<std::vector<torch::Tensor>, const Bucket*>> flats;
  std::vector<WorkPtr> works;
  for (auto& [kind, buckets] : by_kind) {
    for (const auto& bucket : buckets) {
      std::vector<torch::Tensor> pieces;
      for (const auto& grad : bucket.grads)
        pieces.push_back(grad.reshape({-1}));
      flats.emplace_back(std::vector<torch::Tensor>{torch::cat(pieces)}, &bucket);
      auto& tensors = flats.back().first;
      works.push_back(launch([&] { return group.allreduce(tensors, reduce(c10d::ReduceOp::SUM)); },
                             group, "gradient all-reduce"));
    }
  }
  for (size_t b = 0; b < flats.size(); ++b) {
    wait_for(works[b], group, "gradient all-reduce");
    auto& flat = flats[b].first[0];
    flat.div_(size);
    int64_t offset = 0;
    for (const auto& grad : flats[b].second->grads) {
      auto target = grad;
      target.copy_(flat.narrow(0, offset, grad.numel()).view(grad.sizes()));
      offset += grad.numel();
    }
  }
}

void broadcast_tensors(const std::vector<torch::Tensor>& tensors, ProcessGroup& group, int root) {
  if (root < 0 || root >= group.getSize()) {
    throw ValueError("demon::broadcast_tensors: root must be a rank in [0, " +
                     std::to_string(group.getSize()) + "), got " + std::to_string(root));
  }
  torch::NoGradGuard no_grad;
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (const auto& tensor : tensors) {
    std::vector<torch::Tensor> buffer{tensor.detach().contiguous()};
    auto work = launch([&] { return group.broadcast(buffer, options); }, group, "broadcast");
    wait_for(work, group, "broadcast");
    if (!buffer[0].is_same(tensor)) {
      auto target = tensor.detach();
      target.copy_(buffer[0]);
    }
  }
}

void broadcast_module(torch::nn::Module& module, ProcessGroup& group, int root) {
  std::vector<torch::Tensor> tensors = module.parameters();
  for (const auto& buffer : module.buffers())
    tensors.push_back(buffer);
  broadcast_tensors(tensors, group, root);
}

namespace detail {

DataParallel::DataParallel(c10::intrusive_ptr<ProcessGroup> group, DataParallelOptions options)
    : group_(std::move(group)), options_(options) {
  if (!group_) {
    throw ValueError("demon::DemonPruner::set_process_group: the group is null");
  }
  if (options_.bucket_bytes() < 1) {
    throw ValueError("demon::DataParallelOptions: bucket_bytes must be >= 1, got " +
                     std::to_string(options_.bucket_bytes()));
  }
}

int DataParallel::rank() const {
  return group_->getRank();
}

int DataParallel::world_size() const {
  return group_->getSize();
}

void DataParallel::average_gradients(torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> parameters;
  for (const auto& param_group : optimizer.param_groups()) {
    for (const auto& param : param_group.params())
      parameters.push_back(param);
  }
  allreduce_gradients(parameters, *group_, options_.bucket_bytes());
}

void DataParallel::max_over_ranks(std::vector<double>& values, const torch::Device& device) {
  if (world_size() == 1)
    return;
  auto tensor = torch::tensor(values, torch::kDouble).to(device);
  std::vector<torch::Tensor> tensors{tensor};
  auto work = launch([&] { return group_->allreduce(tensors, reduce(c10d::ReduceOp::MAX)); },
                     *group_, "activity all-reduce");
  wait_for(work, *group_, "activity all-reduce");
  const auto result = tensors[0].to(torch::kCPU).contiguous();
  const auto* data = result.data_ptr<double>();
  values.assign(data, data + result.numel());
}

void DataParallel::require_same_units(const std::vector<int64_t>& units, int64_t step,
                                      const torch::Device& device) {
  if (!options_.check_agreement() || world_size() == 1)
    return;
  const auto count = static_cast<int64_t>(units.size());
  const int64_t hash = fingerprint(units);
  // MAX of (x, -x) gives the largest and the smallest value in one collective.
  auto tensor =
      torch::tensor(std::vector<int64_t>{count, -count, hash, -hash}, torch::kLong).to(device);
  std::vector<torch::Tensor> tensors{tensor};
  auto work = launch([&] { return group_->allreduce(tensors, reduce(c10d::ReduceOp::MAX)); },
                     *group_, "prune agreement check");
  wait_for(work, *group_, "prune agreement check");
  const auto result = tensors[0].to(torch::kCPU);
  const auto* v = result.data_ptr<int64_t>();
  if (v[0] != -v[1] || v[2] != -v[3]) {
    throw RuntimeError(
        "demon::DemonPruner: at the prune event of step " + std::to_string(step) + ", " +
        where(*group_) + " would cut " + std::to_string(count) +
        " units, and the ranks disagree (between " + std::to_string(-v[1]) + " and " +
        std::to_string(v[0]) +
        " units): the replicas diverged (gradients not averaged, different seeds or options?); "
        "nothing was cut");
  }
}

}  // namespace detail
}  // namespace demon
