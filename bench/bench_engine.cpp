// The structural engine on a ResNet-18 (CIFAR, width 1, 11.2 M parameters): graph discovery from
// the autograd graph, one prune event (a quarter of every prunable group, AdamW state present),
// and, for scale, one training step at batch 128.
//
//   ./build/bench/bench_engine [--benchmark_filter=...]
//
// Uses every core unless OMP_NUM_THREADS is set; the thread count is printed in the context.
#include <benchmark/benchmark.h>
#include <demon/demon.h>
#include <torch/torch.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "resnet.h"

namespace {

using resnet18_cifar10::ResNet18;

torch::Device device_of(const benchmark::State& state) {
  return state.range(0) == 1 ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

bool skip_without_cuda(benchmark::State& state) {
  if (state.range(0) == 1 && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return true;
  }
  return false;
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda())
    torch::cuda::synchronize();
}

void BM_Discover(benchmark::State& state) {
  if (skip_without_cuda(state))
    return;
  const auto device = device_of(state);
  torch::manual_seed(0);
  ResNet18 model;
  model->to(device);
  const auto x = torch::randn({32, 3, 32, 32}, device);
  const auto y = torch::randint(0, 10, {32}, torch::TensorOptions(device).dtype(torch::kLong));
  const auto loss = torch::cross_entropy_loss(model->forward(x), y);
  int64_t units = 0;
  for (auto _ : state) {
    auto graph = demon::DependencyGraph::discover(*model, loss);
    units = graph.live_units();
    benchmark::DoNotOptimize(graph);
  }
  state.counters["units"] = static_cast<double>(units);
}

void BM_PruneEvent(benchmark::State& state) {
  if (skip_without_cuda(state))
    return;
  const auto device = device_of(state);
  int64_t removed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    torch::manual_seed(0);
    ResNet18 model;
    model->to(device);
    auto optimizer = std::make_shared<torch::optim::AdamW>(model->parameters(),
                                                           torch::optim::AdamWOptions(5e-3));
    const auto x = torch::randn({32, 3, 32, 32}, device);
    const auto y = torch::randint(0, 10, {32}, torch::TensorOptions(device).dtype(torch::kLong));
    auto loss = torch::cross_entropy_loss(model->forward(x), y);
    auto graph = demon::DependencyGraph::discover(*model, loss);
    loss.backward();
    optimizer->step();
    std::mt19937 rng(1);
    std::vector<int64_t> units;
    for (const auto& group : graph.groups()) {
      for (int64_t u : group.units) {
        if (graph.prunable(u) && std::bernoulli_distribution(0.25)(rng))
          units.push_back(u);
      }
    }
    synchronize(device);
    state.ResumeTiming();
    const auto result = demon::prune_units(graph, units, optimizer.get());
    synchronize(device);
    removed = static_cast<int64_t>(result.removed.size());
  }
  state.counters["units_removed"] = static_cast<double>(removed);
}

void BM_TrainStep(benchmark::State& state) {
  if (skip_without_cuda(state))
    return;
  const auto device = device_of(state);
  torch::manual_seed(0);
  ResNet18 model;
  model->to(device);
  auto optimizer =
      std::make_shared<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(5e-3));
  const auto x = torch::randn({128, 3, 32, 32}, device);
  const auto y = torch::randint(0, 10, {128}, torch::TensorOptions(device).dtype(torch::kLong));
  for (auto _ : state) {
    optimizer->zero_grad();
    torch::cross_entropy_loss(model->forward(x), y).backward();
    optimizer->step();
    synchronize(device);
  }
}

// Arg 0: CPU, 1: CUDA (skipped without a GPU).
BENCHMARK(BM_Discover)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PruneEvent)->Arg(0)->Arg(1)->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStep)->Arg(0)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStep)->Arg(1)->Iterations(20)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  benchmark::AddCustomContext("torch_threads", std::to_string(torch::get_num_threads()));
  benchmark::AddCustomContext("cuda", torch::cuda::is_available() ? "available" : "none");
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
