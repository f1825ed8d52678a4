// The structural engine on a ResNet-18 (CIFAR, width 1, 11.2 M parameters): graph discovery from
// the autograd graph, one prune event (a quarter of every prunable group, AdamW state present),
// and, for scale, one training step at batch 128.
//
//   ./build/bench/bench_engine [--benchmark_filter=...]
//
// Uses every core unless OMP_NUM_THREADS is set; the thread count is printed in the context.
#include <demon/demon.h>

#include <random>

#include "bench_support.h"

namespace {

// Arg 0: CPU; 1: CUDA (skipped without a GPU).
bool skip_without_cuda(benchmark::State& state) {
  if (state.range(0) == 1 && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return true;
  }
  return false;
}

torch::Device device_of(const benchmark::State& state) {
  return state.range(0) == 1 ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

void BM_Discover(benchmark::State& state) {
  if (skip_without_cuda(state))
    return;
  bench::Workload work(device_of(state), 32);
  const auto loss = work.loss();
  int64_t units = 0;
  for (auto _ : state) {
    auto graph = demon::DependencyGraph::discover(*work.model, loss);
    units = graph.live_units();
    benchmark::DoNotOptimize(graph);
  }
  state.counters["units"] = static_cast<double>(units);
}

void BM_PruneEvent(benchmark::State& state) {
  if (skip_without_cuda(state))
    return;
  int64_t removed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    bench::Workload work(device_of(state), 32);
    auto optimizer = std::make_shared<torch::optim::AdamW>(work.model->parameters(),
                                                           torch::optim::AdamWOptions(5e-3));
    auto loss = work.loss();
    auto graph = demon::DependencyGraph::discover(*work.model, loss);
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
    work.synchronize();
    state.ResumeTiming();
    const auto result = demon::prune_units(graph, units, optimizer.get());
    work.synchronize();
    removed = static_cast<int64_t>(result.removed.size());
  }
  state.counters["units_removed"] = static_cast<double>(removed);
}

void BM_TrainStep(benchmark::State& state) {
  if (skip_without_cuda(state))
    return;
  bench::Workload work(device_of(state), 128);
  auto optimizer = std::make_shared<torch::optim::AdamW>(work.model->parameters(),
                                                         torch::optim::AdamWOptions(5e-3));
  for (auto _ : state) {
    optimizer->zero_grad();
    work.loss().backward();
    optimizer->step();
    work.synchronize();
  }
}

BENCHMARK(BM_Discover)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PruneEvent)->Arg(0)->Arg(1)->Iterations(5)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStep)->Arg(0)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainStep)->Arg(1)->Iterations(20)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return bench::run_benchmarks(argc, argv);
}
