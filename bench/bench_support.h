#pragma once

// What every benchmark program here shares: a seeded ResNet-18 with a random batch on a device,
// and a main that uses every core (unless OMP_NUM_THREADS is set) and prints how many.

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "resnet.h"

namespace bench {

struct Workload {
  Workload(torch::Device on, int64_t batch) : device(on) {
    torch::manual_seed(0);
    model = resnet18_cifar10::ResNet18();
    model->to(device);
    x = torch::randn({batch, 3, 32, 32}, device);
    y = torch::randint(0, 10, {batch}, torch::TensorOptions(device).dtype(torch::kLong));
  }
  torch::Tensor loss() { return torch::cross_entropy_loss(model->forward(x), y); }
  void synchronize() const {
    if (device.is_cuda())
      torch::cuda::synchronize();
  }
  torch::Device device;
  resnet18_cifar10::ResNet18 model{nullptr};
  torch::Tensor x, y;
};

inline int run_benchmarks(int argc, char** argv) {
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

}  // namespace bench
