// Trains a tiny model for a few steps through an installed demon; exits non-zero on failure.
#include <demon/demon.h>
#include <torch/torch.h>

#include <iostream>

int main() {
  torch::manual_seed(0);
  auto model = torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::BatchNorm1d(16),
                                     torch::nn::ReLU(), torch::nn::Linear(16, 3));
  auto optimizer = std::make_shared<torch::optim::AdamW>(model->parameters());
  demon::DemonPruner pruner(model.ptr(), optimizer, demon::DemonOptions(5).lambda_peak(0.1));
  const auto x = torch::randn({32, 8});
  const auto y = torch::randint(0, 3, {32}, torch::kLong);
  for (int step = 0; step < 5; ++step) {
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(x), y));
    pruner.step();
  }
  if (pruner.current_step() != 5) {
    std::cerr << "unexpected step count " << pruner.current_step() << "\n";
    return 1;
  }
  std::cout << "downstream ok: " << pruner.current_step() << " steps, lambda now "
            << pruner.current_lambda() << "\n";
  return 0;
}
