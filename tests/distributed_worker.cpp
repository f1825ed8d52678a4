// One rank of a data-parallel test (tests/distributed.sh starts N of them on one machine, Gloo
// over loopback, meeting through a FileStore). Each scenario checks its claims across the ranks
// with collectives and exits 0 when they hold, 1 with a message when not, 77 without Gloo.
//   distributed_worker SCENARIO RANK WORLD_SIZE STORE_FILE|tcp:PORT
// Scenarios:
//   train      ResNet-18 (1/8) on synthetic data, each rank on its half of every batch, with
//              prune events: parameters and optimizer state bit-identical across ranks after
//              every event, the same units cut everywhere, the loss falls.
//   one_alive  a unit active only on rank 1's data survives the prune event (with one rank, on
//              rank 0's data alone, it is cut: run with WORLD_SIZE 1 for the control).
//   die        rank 1 exits abruptly at step 5; the others must fail with demon's error (the
//              script checks that they do, and how fast).

#include <torch/torch.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "demon/distributed.h"
#include "detail/torch_compat.h"
#include "training_support.h"

namespace {

using demon::testing::small_resnet;
using demon::testing::synthetic_batch;

int rank_ = 0;
std::string checkpoint_;  // next to the store file

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "rank " << rank_ << ": FAILED: " << what << std::endl;
  std::exit(1);
}

// True when `tensor` holds the same bits on every rank (compared as doubles: exact for float).
bool same_on_all_ranks(const torch::Tensor& tensor, demon::ProcessGroup& group) {
  auto values = tensor.detach().to(torch::kDouble).reshape({-1});
  auto both = torch::cat({values, -values});
  std::vector<torch::Tensor> tensors{both};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp(c10d::ReduceOp::MAX);
  group.allreduce(tensors, options)->wait();
  const auto n = values.numel();
  // max over ranks == -(max of -x) == min over ranks, element by element
  return torch::equal(tensors[0].slice(0, 0, n), -tensors[0].slice(0, n, 2 * n));
}

void require_replicas_identical(demon::DemonPruner& pruner, demon::ProcessGroup& group,
                                const std::string& when) {
  for (const auto& item : pruner.model().named_parameters()) {
    if (!same_on_all_ranks(item.value(), group))
      fail(when + ": parameter " + item.key() + " differs between ranks");
  }
  int64_t state_tensors = 0;
  for (const auto& param_group : pruner.optimizer().param_groups()) {
    for (const auto& param : param_group.params()) {
      auto& state = static_cast<torch::optim::AdamWParamState&>(
          *pruner.optimizer().state().at(demon::detail::optimizer_state_key(param)));
      if (!same_on_all_ranks(state.exp_avg(), group) ||
          !same_on_all_ranks(state.exp_avg_sq(), group))
        fail(when + ": AdamW state differs between ranks");
      state_tensors += 2;
    }
  }
  if (state_tensors == 0)
    fail(when + ": no optimizer state to compare");
}

int train(const c10::intrusive_ptr<demon::ProcessGroup>& group) {
  const int world = group->getSize();
  auto model = small_resnet(/*seed=*/100 + static_cast<uint64_t>(rank_));  // rank 0's wins
  auto optimizer = std::make_shared<torch::optim::AdamW>(
      model->parameters(), torch::optim::AdamWOptions(2e-2).weight_decay(5e-4));
  const int64_t steps = 90;
  demon::DemonPruner pruner(
      model.ptr(), optimizer,
      demon::DemonOptions(steps).lambda_peak(0.1).sigma_peak(1e-4).prune_every(15).seed(3));
  pruner.set_process_group(group);
  int64_t cut = 0;
  pruner.on_prune([&](const demon::PruneReport& report) {
    cut += report.units_removed;
    // The same cut everywhere: the same widths and the same parameters after it.
    require_replicas_identical(pruner, *group,
                               "after the prune event of step " + std::to_string(report.step));
    std::cout << "rank " << rank_ << ": step " << report.step << " cut " << report.units_removed
              << " units" << std::endl;
  });
  std::vector<double> losses;
  for (int64_t step = 0; step < steps; ++step) {
    auto [images, labels] = synthetic_batch(step, 32);
    const int64_t share = 32 / world;
    images = images.narrow(0, rank_ * share, share);
    labels = labels.narrow(0, rank_ * share, share);
    pruner.zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(images), labels);
    losses.push_back(loss.item<double>());
    pruner.backward(loss);
    pruner.step();
  }
  require_replicas_identical(pruner, *group, "at the end");

  // Rank 0 writes the checkpoint; once it is there (a collective), every rank loads it into a
  // fresh dense model and gets its own replica back.
  if (rank_ == 0)
    demon::save_checkpoint(checkpoint_, *model, optimizer.get(), &pruner);
  require_replicas_identical(pruner, *group, "after rank 0's save");
  auto fresh = small_resnet(/*seed=*/999);
  auto fresh_optimizer = std::make_shared<torch::optim::AdamW>(fresh->parameters());
  demon::DemonPruner fresh_pruner(
      fresh.ptr(), fresh_optimizer,
      demon::DemonOptions(steps).lambda_peak(0.1).sigma_peak(1e-4).prune_every(15).seed(3));
  demon::load_checkpoint(checkpoint_, *fresh, fresh_optimizer.get(), &fresh_pruner);
  const auto mine = model->parameters();
  const auto loaded = fresh->parameters();
  for (size_t i = 0; i < mine.size(); ++i) {
    if (!torch::equal(mine[i], loaded[i]))
      fail("the checkpoint rank 0 wrote does not load as this rank's replica");
  }
  if (fresh_pruner.current_step() != pruner.current_step())
    fail("the loaded pruner is at another step");
  if (cut == 0)
    fail("no unit was cut: the test proves nothing");
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) {
    first += losses[static_cast<size_t>(i)];
    last += losses[losses.size() - 1 - static_cast<size_t>(i)];
  }
  if (!(last < 0.7 * first))
    fail("the loss did not fall: " + std::to_string(first / 10) + " -> " +
         std::to_string(last / 10));
  std::cout << "rank " << rank_ << ": OK: " << cut << " units cut, replicas identical, loss "
            << first / 10 << " -> " << last / 10 << std::endl;
  return 0;
}

// hidden = relu(W x) with fixed rows: unit 0 fires only where x0 > 0 (rank 1's data), unit 1
// never (-x0 - 100), units 2 and 3 on every rank's data (x1 > 0, always).
struct TwoLayerImpl : torch::nn::Module {
  TwoLayerImpl() {
    hidden = register_module("hidden", torch::nn::Linear(2, 4));
    out = register_module("out", torch::nn::Linear(4, 2));
    torch::NoGradGuard no_grad;
    hidden->weight.copy_(torch::tensor({{1.0f, 0.0f}, {-1.0f, 0.0f}, {0.0f, 1.0f}, {0.0f, 2.0f}}));
    hidden->bias.copy_(torch::tensor({0.0f, -100.0f, 0.0f, 0.0f}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return out(torch::relu(hidden(x))); }
  torch::nn::Linear hidden{nullptr}, out{nullptr};
};
TORCH_MODULE(TwoLayer);

int one_alive(const c10::intrusive_ptr<demon::ProcessGroup>& group) {
  torch::manual_seed(0);
  TwoLayer model;
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.0));
  demon::DemonPruner pruner(model, optimizer,
                            demon::DemonOptions(100)
                                .regularizer(demon::Regularizer::kNone)
                                .noise(false)
                                .prune_every(1000));
  if (group)
    pruner.set_process_group(group);
  // Rank 0: x0 in [-2, -1]; rank 1: x0 in [1, 2]. x1 in [1, 2] everywhere.
  auto x = torch::rand({8, 2}) + 1.0;
  if (rank_ == 0)
    x.select(1, 0).neg_();
  pruner.zero_grad();
  pruner.backward(model->forward(x).sum());
  pruner.step();
  const auto report = pruner.prune_now();
  const int64_t width = model->hidden->weight.size(0);
  std::cout << "rank " << rank_ << " of " << pruner.world_size() << ": " << report.units_removed
            << " cut, hidden width " << width << std::endl;
  const bool unit0_kept = width == 3 && model->hidden->weight[0][0].item<float>() == 1.0f;
  if (pruner.world_size() > 1 && !unit0_kept)
    fail("the unit active on rank 1's data only was not kept (width " + std::to_string(width) +
         ")");
  if (pruner.world_size() == 1 && width != 2)
    fail("alone on rank 0's data, both units that never fire there should be cut (width " +
         std::to_string(width) + ")");
  std::cout << "rank " << rank_ << ": OK" << std::endl;
  return 0;
}

int die(const c10::intrusive_ptr<demon::ProcessGroup>& group) {
  auto model = small_resnet(/*seed=*/1);
  auto optimizer = std::make_shared<torch::optim::AdamW>(model->parameters());
  demon::DemonPruner pruner(model.ptr(), optimizer, demon::DemonOptions(100).prune_every(1000));
  pruner.set_process_group(group);
  for (int64_t step = 0; step < 100; ++step) {
    if (rank_ == 1 && step == 5) {
      std::cout << "rank 1: exiting abruptly at step 5" << std::endl;
      std::_Exit(9);
    }
    auto [images, labels] = synthetic_batch(step, 16);
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(images), labels));
    pruner.step();
  }
  fail("ran to the end although rank 1 died at step 5");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: distributed_worker train|one_alive|die RANK WORLD_SIZE STORE_FILE\n";
    return 2;
  }
  const std::string scenario = argv[1];
  rank_ = std::stoi(argv[2]);
  checkpoint_ = std::string(argv[4]).rfind("tcp:", 0) == 0
                    ? "distributed_checkpoint.pt"
                    : std::string(argv[4]) + ".checkpoint.pt";
  const int world = std::stoi(argv[3]);
  if (!demon::has_gloo()) {
    std::cout << "SKIP: demon was built without Gloo" << std::endl;
    return 77;
  }
  try {
    const std::string where = argv[4];  // a store file, or tcp:PORT for rank 0's TCP store
    auto store =
        where.rfind("tcp:", 0) == 0
            ? demon::make_tcp_store("127.0.0.1", static_cast<uint16_t>(std::stoi(where.substr(4))),
                                    rank_, world, std::chrono::seconds(60))
            : demon::make_file_store(where, world);
    auto group = demon::make_gloo_group(
        store, rank_, world,
        demon::ProcessGroupOptions().hostname("127.0.0.1").timeout(std::chrono::seconds(60)));
    if (scenario == "train")
      return train(group);
    if (scenario == "one_alive")
      return one_alive(world > 1 ? group : c10::intrusive_ptr<demon::ProcessGroup>());
    if (scenario == "die")
      return die(group);
    std::cerr << "unknown scenario " << scenario << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "rank " << rank_ << ": error: " << e.what() << std::endl;
    return 3;
  }
}
