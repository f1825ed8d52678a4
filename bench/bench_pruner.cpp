// Per-step overhead of DemonPruner against the bare optimizer: ResNet-18 (CIFAR, width 1),
// batch 128, AdamW, steps without a prune event. The pruner does everything it does on such a
// step: activity read from the graph, live mask, Lasso on the BatchNorm scales, noise.
//
//   ./build/bench/bench_pruner [--benchmark_filter=...]
//
// BM_PairedSteps alternates a bare step and a pruner step on two identical models, so that slow
// drift of the machine cancels out, and reports their time ratio. Uses every core unless
// OMP_NUM_THREADS is set; the thread count is printed in the context.
#include <benchmark/benchmark.h>
#include <demon/demon.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "resnet.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Setup {
  explicit Setup(torch::Device on, int64_t batch) {
    torch::manual_seed(0);
    bare_model = resnet18_cifar10::ResNet18();
    torch::manual_seed(0);
    pruned_model = resnet18_cifar10::ResNet18();
    bare_model->to(on);
    pruned_model->to(on);
    bare = std::make_shared<torch::optim::AdamW>(
        bare_model->parameters(), torch::optim::AdamWOptions(5e-3).weight_decay(5e-4));
    auto optimizer = std::make_shared<torch::optim::AdamW>(
        pruned_model->parameters(), torch::optim::AdamWOptions(5e-3).weight_decay(5e-4));
    // Pressure and tracking on, no prune event within the measured steps.
    pruner = std::make_unique<demon::DemonPruner>(
        pruned_model.ptr(), optimizer,
        demon::DemonOptions(100000).lambda_peak(0.2).sigma_peak(5e-5).prune_every(100000));
    x = torch::randn({batch, 3, 32, 32}, on);
    y = torch::randint(0, 10, {batch}, torch::TensorOptions(on).dtype(torch::kLong));
    device = on;
  }
  void bare_step() {
    bare->zero_grad();
    torch::cross_entropy_loss(bare_model->forward(x), y).backward();
    bare->step();
    sync();
  }
  void pruner_step() {
    pruner->zero_grad();
    pruner->backward(torch::cross_entropy_loss(pruned_model->forward(x), y));
    pruner->step();
    sync();
  }
  void sync() const {
    if (device.is_cuda())
      torch::cuda::synchronize();
  }
  resnet18_cifar10::ResNet18 bare_model{nullptr}, pruned_model{nullptr};
  std::shared_ptr<torch::optim::AdamW> bare;
  std::unique_ptr<demon::DemonPruner> pruner;
  torch::Tensor x, y;
  torch::Device device = torch::kCPU;
};

void BM_PairedSteps(benchmark::State& state) {
  const bool cuda = state.range(0) == 1;
  if (cuda && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  Setup setup(cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU), 128);
  // Warm-up; the first pruner step also discovers the graph.
  for (int i = 0; i < (cuda ? 10 : 1); ++i) {
    setup.bare_step();
    setup.pruner_step();
  }
  double bare_seconds = 0.0, pruner_seconds = 0.0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    setup.bare_step();
    const auto t1 = Clock::now();
    setup.pruner_step();
    const auto t2 = Clock::now();
    bare_seconds += std::chrono::duration<double>(t1 - t0).count();
    pruner_seconds += std::chrono::duration<double>(t2 - t1).count();
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["bare_ms"] = 1e3 * bare_seconds / n;
  state.counters["pruner_ms"] = 1e3 * pruner_seconds / n;
  state.counters["ratio"] = pruner_seconds / bare_seconds;
}

BENCHMARK(BM_PairedSteps)->Arg(0)->Iterations(8)->Unit(benchmark::kSecond);
BENCHMARK(BM_PairedSteps)->Arg(1)->Iterations(200)->Unit(benchmark::kSecond);

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
