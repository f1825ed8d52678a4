// Quickstart: DemonPruner inside an ordinary LibTorch training loop.
//
// Trains a small conv net on a synthetic 4-class image task it generates itself, and prints per
// interval the λ(t) and σ(t) the pruner applied, the Lasso penalty Σ|γ| over all BatchNorm
// scales, and how many scales the pressure has driven to (near) zero.
#include <demon/demon.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <string>
#include <thread>

#include "log.h"

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    using namespace torch::nn;
    conv1 = register_module("conv1", Conv2d(Conv2dOptions(3, 32, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", BatchNorm2d(32));
    conv2 = register_module("conv2", Conv2d(Conv2dOptions(32, 64, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", BatchNorm2d(64));
    head = register_module("head", Linear(64, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
    x = torch::relu(bn2(conv2(x)));
    return head(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

// Class k is a bright bar (horizontal, vertical, diagonal, or a centred square) in a
// class-specific colour, at a random offset, under Gaussian noise.
std::pair<torch::Tensor, torch::Tensor> synthetic_batch(int64_t n, torch::Generator& gen) {
  auto labels = torch::randint(0, 4, {n}, gen, torch::kLong);
  auto images = torch::randn({n, 3, 16, 16}, gen) * 0.5;
  auto offsets = torch::randint(0, 8, {n}, gen, torch::kLong);
  auto* label = labels.data_ptr<int64_t>();
  auto* offset = offsets.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    auto image = images[i];
    const int64_t o = offset[i];
    const int64_t k = label[i];
    if (k == 0)
      image.slice(1, o, o + 4) += 2.0;
    if (k == 1)
      image.slice(2, o, o + 4) += 2.0;
    if (k == 2)
      image.diagonal(0, 1, 2) += 2.0;
    if (k == 3)
      image.slice(1, 4, 12).slice(2, 4, 12).select(0, 2) += 2.0;
    image.select(0, k % 3) += 0.5;
  }
  return {images, labels};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"demon quickstart: DemonPruner on a small CNN and synthetic data"};
  int64_t steps = 400;
  int64_t batch_size = 64;
  int64_t log_every = 50;
  double lambda_peak = 0.05;
  double sigma_peak = 5e-5;
  uint64_t seed = 0;
  std::string options_file;
  app.add_option("--options", options_file,
                 "DemonOptions JSON (e.g. configs/quickstart.json); --lambda/--sigma/--seed "
                 "given on the command line override it")
      ->check(CLI::ExistingFile);
  app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "images per step")->check(CLI::PositiveNumber);
  app.add_option("--lambda", lambda_peak, "peak of the Lasso strength λ(t)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sigma", sigma_peak, "peak of the noise std σ(t)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-every", log_every, "steps between progress lines")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "seed for data, initialization and noise");
  CLI11_PARSE(app, argc, argv);

  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  torch::manual_seed(seed);
  auto data_gen = torch::make_generator<torch::CPUGeneratorImpl>(seed + 1);

  auto options =
      options_file.empty()
          ? demon::DemonOptions().lambda_peak(lambda_peak).sigma_peak(sigma_peak).seed(seed)
          : demon::DemonOptions::load(options_file);
  options.total_steps(steps);
  if (app.count("--lambda"))
    options.lambda_peak(lambda_peak);
  if (app.count("--sigma"))
    options.sigma_peak(sigma_peak);
  if (app.count("--seed"))
    options.seed(seed);

  Net model;
  auto optimizer = std::make_shared<torch::optim::AdamW>(
      model->parameters(), torch::optim::AdamWOptions(5e-3).weight_decay(5e-4));
  demon::DemonPruner pruner(model.ptr(), optimizer, options);
  example_log::info("training %lld steps on %d threads; options %s", static_cast<long long>(steps),
                    torch::get_num_threads(), demon::to_json(pruner.options()).dump().c_str());

  const auto& scales = pruner.regularizer().scales();
  int64_t total_scales = 0;
  for (const auto& s : scales)
    total_scales += s.scale.numel();

  double loss_sum = 0.0;
  int64_t correct = 0, seen = 0;
  for (int64_t step = 0; step < steps; ++step) {
    auto [images, labels] = synthetic_batch(batch_size, data_gen);
    const double lambda = pruner.current_lambda();
    const double sigma = pruner.current_sigma();
    pruner.zero_grad();
    auto logits = model->forward(images);
    auto loss = torch::cross_entropy_loss(logits, labels);
    pruner.backward(loss);
    pruner.step();

    loss_sum += loss.item<double>();
    correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
    seen += batch_size;
    if ((step + 1) % log_every == 0 || step + 1 == steps) {
      torch::NoGradGuard no_grad;
      int64_t small = 0;
      for (const auto& s : scales)
        small += s.scale.abs().lt(1e-2).sum().item<int64_t>();
      example_log::info(
          "step %4lld  loss %.4f  acc %.3f  lambda %.3e  sigma %.3e  sum|gamma| %.3f  "
          "|gamma|<1e-2: %lld/%lld",
          static_cast<long long>(step + 1), loss_sum / static_cast<double>(seen / batch_size),
          static_cast<double>(correct) / static_cast<double>(seen), lambda, sigma,
          pruner.regularizer().penalty(), static_cast<long long>(small),
          static_cast<long long>(total_scales));
      loss_sum = 0.0;
      correct = seen = 0;
    }
  }
  return 0;
}
