// Quickstart: a LibTorch user's small CNN, ported to demon.
//
// The program is shaped like PyTorch's C++ MNIST example: a model held by value (two
// convolutions, dropout, two linear layers), torch::data's DataLoader, SGD with momentum held by
// value. It trains on CIFAR-10 (--data-dir, the binary release) or, without it, on a synthetic
// CIFAR-shaped set. The lines marked "demon:" are all that porting it took; the README's
// "Porting your training loop" walks through them.
//
//   demon_quickstart --data-dir /data/cifar10 --epochs 10            (λ: automatic)
//   demon_quickstart --optimizer adamw --lambda 0.01 --out run.json
#include <demon/demon.h>  // demon:
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "cifar10.h"
#include "log.h"
#include "synthetic_data.h"

namespace {

// Two conv-BatchNorm-ReLU-pool stages, then 1600 features into a hidden layer with dropout.
struct Net : torch::nn::Module {
  Net() {
    using namespace torch::nn;
    conv1 = register_module("conv1", Conv2d(Conv2dOptions(3, 32, 5)));
    bn1 = register_module("bn1", BatchNorm2d(32));
    conv2 = register_module("conv2", Conv2d(Conv2dOptions(32, 64, 5)));
    bn2 = register_module("bn2", BatchNorm2d(64));
    fc1 = register_module("fc1", Linear(64 * 5 * 5, 256));
    bn3 = register_module("bn3", BatchNorm1d(256));
    fc2 = register_module("fc2", Linear(256, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn1->forward(conv1->forward(x))), 2);  // 32 -> 28 -> 14
    x = torch::max_pool2d(torch::relu(bn2->forward(conv2->forward(x))), 2);  // 14 -> 10 -> 5
    // demon: flatten(1), not view({-1, 1600}): demon changes conv2's channel count.
    x = x.flatten(1);
    x = torch::relu(bn3->forward(fc1->forward(x)));
    x = torch::dropout(x, 0.5, is_training());
    return fc2->forward(x);
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::BatchNorm1d bn3{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// CIFAR-10 (or its synthetic stand-in) as a torch::data dataset, normalized per channel.
class Cifar10 : public torch::data::datasets::Dataset<Cifar10> {
 public:
  explicit Cifar10(const resnet18_cifar10::Dataset& data) {
    const auto mean = torch::tensor({0.4914, 0.4822, 0.4465}).view({1, 3, 1, 1});
    const auto std = torch::tensor({0.2470, 0.2435, 0.2616}).view({1, 3, 1, 1});
    images_ = (data.images.to(torch::kFloat) / 255.0 - mean) / std;
    labels_ = data.labels;
  }
  torch::data::Example<> get(size_t index) override {
    const auto i = static_cast<int64_t>(index);
    return {images_[i], labels_[i]};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(labels_.size(0)); }

 private:
  torch::Tensor images_, labels_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"demon quickstart: a small CNN on CIFAR-10, trained with Demon Pruning"};
  std::string data_dir, out, optimizer_name = "sgd";
  int64_t epochs = 5, batch_size = 64, threads = 0;
  double lr = 0.01, lambda = 0.0;
  uint64_t seed = 0;
  app.add_option("--data-dir", data_dir,
                 "CIFAR-10 binary release; without it a synthetic CIFAR-shaped set");
  app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "images per step")->check(CLI::PositiveNumber);
  app.add_option("--optimizer", optimizer_name, "sgd (momentum 0.9) or adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}));
  app.add_option("--lr", lr, "learning rate (AdamW: try 1e-3)")->check(CLI::PositiveNumber);
  app.add_option("--lambda", lambda,
                 "DemP λ peak; default: automatic (see DemonOptions::lambda_relative)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "seed for initialization, data order and noise");
  app.add_option("--threads", threads, "CPU threads (0: every core)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--out", out, "write the run's summary as JSON here");
  CLI11_PARSE(app, argc, argv);

  if (threads > 0) {
    torch::set_num_threads(static_cast<int>(threads));
  } else if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  torch::manual_seed(seed);
  const bool real = !data_dir.empty();
  const auto train_data = real ? resnet18_cifar10::read_cifar10(data_dir, true)
                               : resnet18_cifar10::make_synthetic_cifar10(10000, seed, 0);
  const auto test_data = real ? resnet18_cifar10::read_cifar10(data_dir, false)
                              : resnet18_cifar10::make_synthetic_cifar10(2000, seed, 1);
  const int64_t train_size = train_data.size();
  auto train_loader = torch::data::make_data_loader<torch::data::samplers::RandomSampler>(
      Cifar10(train_data).map(torch::data::transforms::Stack<>()),
      torch::data::DataLoaderOptions().batch_size(batch_size));
  auto test_loader =
      torch::data::make_data_loader(Cifar10(test_data).map(torch::data::transforms::Stack<>()),
                                    torch::data::DataLoaderOptions().batch_size(1000));

  Net model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (optimizer_name == "sgd") {
    optimizer = std::make_unique<torch::optim::SGD>(
        model.parameters(), torch::optim::SGDOptions(lr).momentum(0.9).weight_decay(5e-4));
  } else {
    optimizer = std::make_unique<torch::optim::AdamW>(
        model.parameters(), torch::optim::AdamWOptions(lr).weight_decay(5e-4));
  }

  // demon: the run's length, then the pruner around the model and optimizer as they are.
  auto options = demon::DemonOptions()
                     .epochs(epochs)
                     .steps_per_epoch(demon::batches_per_epoch(train_size, batch_size))
                     .prune_every(demon::batches_per_epoch(train_size, batch_size))
                     .seed(seed);
  if (app.count("--lambda") > 0) {
    options.lambda_peak(lambda);
  }
  demon::DemonPruner pruner(model, *optimizer, options);
  pruner.on_prune([](const demon::PruneReport& report) {
    example_log::info("prune event at step %lld: %lld units removed, %.1f%% of parameters left",
                      static_cast<long long>(report.step),
                      static_cast<long long>(report.units_removed),
                      100.0 * (1.0 - report.after.parameter_sparsity()));
  });
  example_log::info("%s, %lld training images, %d threads; DemP options %s",
                    real ? "CIFAR-10" : "synthetic CIFAR-shaped data",
                    static_cast<long long>(train_size), torch::get_num_threads(),
                    pruner.options().to_json().dump().c_str());

  const auto start = std::chrono::steady_clock::now();
  double test_accuracy = 0.0;
  for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
    model.train();
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0, batches = 0;
    for (auto& batch : *train_loader) {
      pruner.zero_grad();  // demon: was optimizer.zero_grad()
      auto output = model.forward(batch.data);
      auto loss = torch::cross_entropy_loss(output, batch.target);
      pruner.backward(loss);  // demon: was loss.backward()
      pruner.step();          // demon: was optimizer.step()
      loss_sum += loss.item<double>();
      correct += output.argmax(1).eq(batch.target).sum().item<int64_t>();
      seen += batch.data.size(0);
      ++batches;
    }
    model.eval();
    torch::NoGradGuard no_grad;
    int64_t test_correct = 0, test_seen = 0;
    for (const auto& batch : *test_loader) {
      test_correct += model.forward(batch.data).argmax(1).eq(batch.target).sum().item<int64_t>();
      test_seen += batch.data.size(0);
    }
    test_accuracy = static_cast<double>(test_correct) / static_cast<double>(test_seen);
    const auto summary = pruner.summary();
    example_log::info(
        "epoch %lld/%lld: loss %.4f, train accuracy %.4f, test accuracy %.4f, live units "
        "%lld/%lld, parameters %.1f%% of dense",
        static_cast<long long>(epoch), static_cast<long long>(epochs),
        loss_sum / static_cast<double>(batches),
        static_cast<double>(correct) / static_cast<double>(seen), test_accuracy,
        static_cast<long long>(summary.live_units), static_cast<long long>(summary.initial_units),
        100.0 * (1.0 - summary.parameter_sparsity()));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto summary = pruner.summary();
  std::cout << summary.table();
  if (!out.empty()) {
    std::ofstream(out) << nlohmann::json{{"test_accuracy", test_accuracy},
                                         {"optimizer", optimizer_name},
                                         {"lr", lr},
                                         {"lambda_peak", pruner.lambda_peak()},
                                         {"epochs", epochs},
                                         {"data", real ? "cifar10" : "synthetic"},
                                         {"seconds", seconds},
                                         {"summary", summary.to_json()}}
                              .dump(2)
                       << "\n";
  }
  return 0;
}
