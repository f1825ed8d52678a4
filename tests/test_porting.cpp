// A LibTorch user's program, ported to demon as the README says: the shape of PyTorch's C++ MNIST
// example (model and optimizer held by value; conv, conv, dropout, two linear layers; a forward
// that flattens with a hard-coded width; SGD with momentum), written here for the test.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "detail/torch_compat.h"
#include "graph_support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;

struct UserNet : torch::nn::Module {
  UserNet(bool with_norm, bool with_fixed_view) : norm(with_norm), fixed_view(with_fixed_view) {
    using namespace torch::nn;
    conv1 = register_module("conv1", Conv2d(Conv2dOptions(1, 10, 5)));
    conv2 = register_module("conv2", Conv2d(Conv2dOptions(10, 20, 5)));
    conv2_drop = register_module("conv2_drop", Dropout2d());
    fc1 = register_module("fc1", Linear(320, 50));
    fc2 = register_module("fc2", Linear(50, 10));
    if (norm) {
      bn1 = register_module("bn1", BatchNorm2d(10));
      bn2 = register_module("bn2", BatchNorm2d(20));
      bn3 = register_module("bn3", BatchNorm1d(50));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    x = conv1->forward(x);
    x = torch::relu(torch::max_pool2d(norm ? bn1->forward(x) : x, 2));
    x = conv2->forward(x);
    x = torch::relu(torch::max_pool2d(conv2_drop->forward(norm ? bn2->forward(x) : x), 2));
    x = fixed_view ? x.view({-1, 320}) : x.flatten(1);  // the user's literal: 20 channels × 4 × 4
    x = fc1->forward(x);
    x = torch::relu(norm ? bn3->forward(x) : x);
    x = torch::dropout(x, /*p=*/0.5, /*train=*/is_training());
    return torch::log_softmax(fc2->forward(x), /*dim=*/1);
  }
  bool norm, fixed_view;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Dropout2d conv2_drop{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::BatchNorm1d bn3{nullptr};
};

// 28×28 grey images of 10 classes: class k lights a 6×6 square at one of 10 places, under noise.
std::pair<torch::Tensor, torch::Tensor> batch_of(int64_t index, int64_t size = 64) {
  auto generator = torch::make_generator<torch::CPUGeneratorImpl>(500 + index);
  auto labels = torch::randint(0, 10, {size}, generator, torch::kLong);
  auto images = torch::randn({size, 1, 28, 28}, generator) * 0.3;
  const auto* label = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < size; ++i) {
    const int64_t row = 2 + 12 * (label[i] / 5), col = 1 + 5 * (label[i] % 5);
    images[i][0].slice(0, row, row + 6).slice(1, col, col + 6) += 1.5;
  }
  return {images, labels};
}

// The user's step, with the three calls the port changes.
double train_step(DemonPruner& pruner, UserNet& model, int64_t index) {
  auto [images, labels] = batch_of(index);
  pruner.zero_grad();
  auto loss = torch::nll_loss(model.forward(images), labels);
  pruner.backward(loss);
  pruner.step();
  return loss.item<double>();
}

// Collects demon's warnings for the duration of a test.
class Warnings {
 public:
  Warnings() {
    previous_ = demon::set_warning_handler([this](const std::string& m) { seen_.push_back(m); });
  }
  ~Warnings() { demon::set_warning_handler(previous_); }
  Warnings(const Warnings&) = delete;
  Warnings& operator=(const Warnings&) = delete;
  bool any_contains(const std::string& text) const {
    for (const auto& m : seen_) {
      if (m.find(text) != std::string::npos)
        return true;
    }
    return false;
  }
  const std::vector<std::string>& all() const { return seen_; }

 private:
  demon::WarningHandler previous_;
  std::vector<std::string> seen_;
};

std::string all_text(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines)
    text += line + "\n";
  return text;
}

TEST(PortingTest, AModelWithoutNormalizationLayersIsSaid) {
  Warnings warnings;
  torch::manual_seed(0);
  UserNet model(/*norm=*/false, /*fixed_view=*/false);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  DemonPruner pruner(model, optimizer, DemonOptions().epochs(1).steps_per_epoch(10));
  EXPECT_TRUE(warnings.any_contains("no normalization layer")) << all_text(warnings.all());
  const auto summary = pruner.summary();
  ASSERT_EQ(summary.warnings.size(), 1u);
  EXPECT_NE(summary.table().find("warning: the model has no normalization layer"),
            std::string::npos)
      << summary.table();
  EXPECT_EQ(summary.to_json().at("warnings").size(), 1u);
  // Training works all the same (units that die on their own are still cut).
  EXPECT_TRUE(std::isfinite(train_step(pruner, model, 0)));
  // Made an error on request; "none" says that no pressure is intended.
  EXPECT_THROW(DemonPruner(model, optimizer, DemonOptions(10).error_if_inactive(true)),
               std::invalid_argument);
  Warnings quiet;
  DemonPruner intended(model, optimizer, DemonOptions(10).regularizer(demon::Regularizer::kNone));
  EXPECT_TRUE(quiet.all().empty()) << all_text(quiet.all());
}

// Plants dead units in conv1, conv2 and fc1 of a pruner's graph; returns their count per group.
void plant(const DemonPruner& pruner) {
  const auto& graph = *pruner.graph();
  for (const auto& [group, positions] : std::vector<std::pair<std::string, std::vector<size_t>>>{
           {"conv1", {3}}, {"conv2", {0, 7}}, {"fc1", {1, 2, 30}}}) {
    for (size_t position : positions)
      demon::testing::plant_dead(graph, demon::testing::unit_of(graph, group, position));
  }
}

// The units planted dead stay dead for the one step after an empty prune event: the next event
// cuts exactly them.
demon::PruneReport prune_planted(DemonPruner& pruner, UserNet& model) {
  train_step(pruner, model, 0);
  plant(pruner);
  pruner.prune_now();  // starts a fresh interval of activity, with the units dead
  train_step(pruner, model, 1);
  return pruner.prune_now();
}

int64_t width(const demon::PruneReport& report, const std::string& layer) {
  for (const auto& l : report.after.layers) {
    if (l.name == layer)
      return l.current;
  }
  return -1;
}

TEST(PortingTest, AFixedViewIsPinnedWithAWarningAndTrainingGoesOn) {
  Warnings warnings;
  torch::manual_seed(0);
  UserNet model(/*norm=*/true, /*fixed_view=*/true);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  DemonPruner pruner(model, optimizer, DemonOptions(100).lambda_peak(0.0).noise(false));
  const auto report = prune_planted(pruner, model);
  // conv1 and fc1 lost their dead units; conv2, behind view({-1, 320}), kept all 20.
  EXPECT_EQ(report.units_removed, 4) << report.table();
  EXPECT_EQ(width(report, "conv1"), 9);
  EXPECT_EQ(width(report, "fc1"), 47);
  EXPECT_EQ(width(report, "conv2"), 20);
  EXPECT_EQ(model.conv2->weight.size(0), 20);
  const std::string text = all_text(warnings.all());
  EXPECT_TRUE(warnings.any_contains("cutting conv2 broke the model's forward")) << text;
  EXPECT_TRUE(warnings.any_contains("[-1, 320]")) << text;     // the literal, from torch
  EXPECT_TRUE(warnings.any_contains("x.flatten(1)")) << text;  // the fix
  EXPECT_EQ(pruner.summary().warnings.size(), 1u);
  // conv2 is pinned with the reason; the next events leave it alone, and training goes on.
  const auto& graph = *pruner.graph();
  const auto& conv2 = demon::testing::group_named(graph, "conv2");
  EXPECT_FALSE(graph.prunable(conv2.units[0]));
  EXPECT_NE(graph.units()[conv2.units[0]].pin_reason.find("broke the model's forward"),
            std::string::npos);
  for (int64_t step = 2; step < 6; ++step)
    EXPECT_TRUE(std::isfinite(train_step(pruner, model, step)));
  EXPECT_NO_THROW(pruner.prune_now());
  EXPECT_EQ(model.conv2->weight.size(0), 20);
}

TEST(PortingTest, AFixedViewIsAnErrorThatChangesNothing) {
  torch::manual_seed(0);
  UserNet model(/*norm=*/true, /*fixed_view=*/true);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  DemonPruner pruner(
      model, optimizer,
      DemonOptions(100).lambda_peak(0.0).noise(false).forward_check(demon::ForwardCheck::kError));
  train_step(pruner, model, 0);
  plant(pruner);
  pruner.prune_now();
  train_step(pruner, model, 1);
  // Everything the event could touch, before it.
  std::vector<torch::Tensor> tensors, grads, momenta;
  for (const auto& p : model.parameters()) {
    tensors.push_back(p.detach().clone());
    grads.push_back(p.grad().clone());
    auto& state = static_cast<torch::optim::SGDParamState&>(
        *optimizer.state().at(demon::detail::optimizer_state_key(p)));
    momenta.push_back(state.momentum_buffer().clone());
  }
  for (const auto& b : model.buffers())
    tensors.push_back(b.clone());
  const int64_t live = pruner.graph()->live_units();
  try {
    pruner.prune_now();
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("step 2"), std::string::npos) << message;
    EXPECT_NE(message.find("conv2 (20 -> 18 units)"), std::string::npos) << message;
    EXPECT_NE(message.find("[-1, 320]"), std::string::npos) << message;
    EXPECT_NE(message.find("x.flatten(1)"), std::string::npos) << message;
    EXPECT_NE(message.find("as before the event"), std::string::npos) << message;
    EXPECT_EQ(message.find("conv1 ("), std::string::npos) << message;  // only the culprit
  }
  // Nothing changed: tensors, gradients, optimizer state, module options, the graph.
  size_t i = 0;
  for (const auto& p : model.parameters()) {
    EXPECT_TRUE(torch::equal(p, tensors[i])) << i;
    EXPECT_TRUE(torch::equal(p.grad(), grads[i])) << i;
    auto& state = static_cast<torch::optim::SGDParamState&>(
        *optimizer.state().at(demon::detail::optimizer_state_key(p)));
    EXPECT_TRUE(torch::equal(state.momentum_buffer(), momenta[i])) << i;
    ++i;
  }
  for (const auto& b : model.buffers()) {
    EXPECT_TRUE(torch::equal(b, tensors[i])) << i;
    ++i;
  }
  EXPECT_EQ(model.conv1->options.out_channels(), 10);
  EXPECT_EQ(model.conv2->options.out_channels(), 20);
  EXPECT_EQ(model.fc1->options.out_features(), 50);
  EXPECT_EQ(pruner.graph()->live_units(), live);
  EXPECT_EQ(pruner.prune_events(), 1);
  // The user can still save, or train on.
  EXPECT_TRUE(std::isfinite(train_step(pruner, model, 2)));
}

TEST(PortingTest, ByValueModelAndOptimizerWithTheirCheckpoint) {
  const auto dir = std::filesystem::temp_directory_path() / "demon_porting_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "checkpoint.pt").string();
  torch::manual_seed(0);
  UserNet model(/*norm=*/true, /*fixed_view=*/false);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  DemonPruner pruner(model, optimizer, DemonOptions(100).lambda_peak(0.0).noise(false));
  const auto report = prune_planted(pruner, model);
  EXPECT_EQ(report.units_removed, 6) << report.table();  // flatten(1) follows conv2's width
  EXPECT_EQ(model.fc1->weight.size(1), 18 * 16);
  demon::save_checkpoint(path, model, optimizer, &pruner, {{"epoch", 3}});

  torch::manual_seed(1);
  UserNet fresh(/*norm=*/true, /*fixed_view=*/false);
  torch::optim::SGD fresh_optimizer(fresh.parameters(),
                                    torch::optim::SGDOptions(0.01).momentum(0.5));
  DemonPruner fresh_pruner(fresh, fresh_optimizer, DemonOptions(100).lambda_peak(0.0).noise(false));
  EXPECT_EQ(demon::load_checkpoint(path, fresh, fresh_optimizer, &fresh_pruner).at("epoch"), 3);
  EXPECT_EQ(fresh.conv2->options.out_channels(), 18);
  EXPECT_TRUE(torch::equal(fresh.fc1->weight, model.fc1->weight));
  EXPECT_EQ(fresh_pruner.current_step(), pruner.current_step());
  EXPECT_TRUE(std::isfinite(train_step(fresh_pruner, fresh, 3)));
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// With norm layers and λ left automatic, the user's SGD program prunes without collapsing. How
// much it cuts varies with the seed and with the LibTorch release's kernels (a fifth to a half of
// the FLOPs on most, a tenth on some), so the bound asks for a twentieth.
TEST(PortingTest, DefaultLambdaPrunesTheSmallCnnWithoutCollapse) {
  torch::manual_seed(0);
  UserNet model(/*norm=*/true, /*fixed_view=*/false);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  const int64_t epochs = 10, steps_per_epoch = 300;
  DemonPruner pruner(
      model, optimizer,
      DemonOptions().epochs(epochs).steps_per_epoch(steps_per_epoch).prune_every(steps_per_epoch));
  EXPECT_FALSE(pruner.options().lambda_peak().has_value());  // automatic
  for (int64_t step = 0; step < epochs * steps_per_epoch; ++step) {
    auto [images, labels] = batch_of(step, /*size=*/16);
    pruner.zero_grad();
    auto loss = torch::nll_loss(model.forward(images), labels);
    pruner.backward(loss);
    pruner.step();
  }
  model.eval();
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t b = 0; b < 4; ++b) {
    auto [images, labels] = batch_of(1000 + b);
    correct += model.forward(images).argmax(1).eq(labels).sum().item<int64_t>();
  }
  const double accuracy = correct / 256.0;
  const auto summary = pruner.summary();
  std::cout << "automatic lambda " << pruner.lambda_peak() << ": accuracy " << accuracy
            << ", neural sparsity " << summary.neural_sparsity() << ", parameter sparsity "
            << summary.parameter_sparsity() << ", FLOPs " << summary.flops_ratio() << "\n";
  EXPECT_GT(summary.neural_sparsity(), 0.0) << summary.table();
  EXPECT_LT(summary.flops_ratio(), 0.95) << summary.table();
  EXPECT_GT(accuracy, 0.9);
}

}  // namespace
