// Per-step overhead of DemonPruner against the bare optimizer: ResNet-18 (CIFAR, width 1),
// batch 128, AdamW, steps without a prune event. The pruner does everything it does on such a
// step: activity read from the graph, live mask, Lasso on the BatchNorm scales, noise.
//
//   ./build/bench/bench_pruner [--benchmark_filter=...]
//
// BM_PairedSteps alternates a bare step and a pruner step on two identical models, so that slow
// drift of the machine cancels out, and reports their time ratio. BM_ChannelPeak times the
// activity read's per-channel reduction of a channels-last activation against LibTorch's plain
// one. BM_HealthObserve and BM_GradientScaleObserve time what the health guard and the automatic
// λ's measurement add to a step. Uses every core unless OMP_NUM_THREADS is set; the thread count is
// printed in the context.
#include <demon/demon.h>

#include <chrono>
#include <limits>

#include "bench_support.h"
#include "detail/channel_reduction.h"

namespace {

using Clock = std::chrono::steady_clock;

// Two identical models: one trained by the bare optimizer, one through the pruner.
struct Setup {
  explicit Setup(torch::Device on, int64_t batch) : bare_work(on, batch), pruned_work(on, batch) {
    bare = std::make_shared<torch::optim::AdamW>(
        bare_work.model->parameters(), torch::optim::AdamWOptions(5e-3).weight_decay(5e-4));
    auto optimizer = std::make_shared<torch::optim::AdamW>(
        pruned_work.model->parameters(), torch::optim::AdamWOptions(5e-3).weight_decay(5e-4));
    // Pressure and tracking on, no prune event within the measured steps.
    pruner = std::make_unique<demon::DemonPruner>(
        pruned_work.model.ptr(), optimizer,
        demon::DemonOptions(100000).lambda_peak(0.2).sigma_peak(5e-5).prune_every(100000));
  }
  void bare_step() {
    bare->zero_grad();
    bare_work.loss().backward();
    bare->step();
    bare_work.synchronize();
  }
  void pruner_step() {
    pruner->zero_grad();
    pruner->backward(pruned_work.loss());
    pruner->step();
    pruned_work.synchronize();
  }
  bench::Workload bare_work, pruned_work;
  std::shared_ptr<torch::optim::AdamW> bare;
  std::unique_ptr<demon::DemonPruner> pruner;
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

// The activity read's per-channel peak of a channels-last activation on the CPU, [128, C, 32,
// 32]: arg 1 = 0 the plain LibTorch reductions (trailing dims, then the batch), 1 the library's
// reduce_to_channels, which reduces wide rows first when C is not a multiple of 32.
void BM_ChannelPeak(benchmark::State& state) {
  const int64_t channels = state.range(0);
  torch::manual_seed(0);
  const auto x =
      torch::randn({128, channels, 32, 32}).contiguous(torch::MemoryFormat::ChannelsLast);
  const bool library = state.range(1) == 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(library ? demon::detail::reduce_to_channels(x, 1, true)
                                     : x.amax({2, 3}).amax(0));
  }
  state.SetLabel(library ? "reduce_to_channels" : "amax({2, 3}).amax(0)");
}

BENCHMARK(BM_ChannelPeak)->ArgsProduct({{24, 32, 40, 64}, {0, 1}})->Unit(benchmark::kMillisecond);

// What the health guard adds to every step: observing one loss (arg 0: CPU, 1: CUDA), a few
// small kernels and no host sync, against the step times above. Its read, one sync, comes only at
// the controller's cadence (a quarter of prune_every).
void BM_HealthObserve(benchmark::State& state) {
  const bool cuda = state.range(0) == 1;
  if (cuda && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const auto device = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  demon::HealthGuard guard(0.25, 50, 0.5);
  const auto loss = torch::full({}, 1.5, torch::TensorOptions(device));
  guard.observe(loss);
  for (auto _ : state) {
    guard.observe(loss);
  }
  if (cuda) {
    torch::cuda::synchronize();
  }
}

BENCHMARK(BM_HealthObserve)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// What measuring an automatic λ's unit adds to each step of λ's rise (the first 26% of a run):
// the mean |∂L/∂γ| over the full-width ResNet-18's 4,800 BatchNorm scale entries (arg 0: CPU,
// 1: CUDA), a few kernels and no host sync.
void BM_GradientScaleObserve(benchmark::State& state) {
  const bool cuda = state.range(0) == 1;
  if (cuda && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  bench::Workload work(cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU), 2);
  work.loss().backward();
  const auto scales = demon::find_norm_scales(*work.model);
  demon::GradientScale scale(std::numeric_limits<int64_t>::max());
  scale.observe(scales);
  for (auto _ : state) {
    scale.observe(scales);
  }
  work.synchronize();
}

BENCHMARK(BM_GradientScaleObserve)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  return bench::run_benchmarks(argc, argv);
}
