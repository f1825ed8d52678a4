#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "demon/checkpoint.h"
#include "demon/pruner.h"
#include "demon/warnings.h"
#include "graph_support.h"
#include "models.h"
#include "support.h"
#include "training_support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using namespace demon::testing;
namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("demon_checkpoint_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

DemonOptions pruning_options(int64_t steps) {
  return DemonOptions(steps).lambda_peak(0.1).sigma_peak(1e-4).prune_every(15).seed(3);
}

std::shared_ptr<torch::optim::AdamW> adamw(resnet18_cifar10::ResNet18& model) {
  return std::make_shared<torch::optim::AdamW>(model->parameters(),
                                               torch::optim::AdamWOptions(2e-2).weight_decay(5e-4));
}

std::string read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The pruner's whole saved state, as bytes.
std::string state_of(const DemonPruner& pruner) {
  torch::serialize::OutputArchive archive;
  pruner.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

TEST_F(CheckpointTest, PrunedModelLoadsIntoAFreshDenseModel) {
  auto model = small_resnet();
  auto optimizer = adamw(model);
  DemonPruner pruner(model.ptr(), optimizer, pruning_options(90));
  train(pruner, model, 0, 90);
  ASSERT_GT(pruner.summary().parameter_sparsity(), 0.1);
  demon::save_checkpoint(path("model.pt"), *model, nullptr, nullptr, {{"epoch", 7}});

  auto fresh = small_resnet(/*seed=*/123);
  const auto extra = demon::load_checkpoint(path("model.pt"), *fresh);
  EXPECT_EQ(extra.at("epoch"), 7);
  auto saved = model->named_parameters();
  for (const auto& item : fresh->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), saved[item.key()])) << item.key();
  }
  for (size_t b = 0; b < model->blocks.size(); ++b) {
    EXPECT_EQ(fresh->blocks[b]->conv1->options.out_channels(),
              model->blocks[b]->conv1->weight.size(0));
    EXPECT_EQ(fresh->blocks[b]->bn1->options.num_features(), model->blocks[b]->bn1->weight.size(0));
  }
  EXPECT_EQ(fresh->head->options.in_features(), model->head->weight.size(1));
  model->eval();
  fresh->eval();
  const auto x = synthetic_batch(999).first;
  EXPECT_TRUE(torch::equal(model->forward(x), fresh->forward(x)));
  // It trains at its new size.
  fresh->train();
  auto fresh_optimizer = adamw(fresh);
  fresh_optimizer->zero_grad();
  torch::cross_entropy_loss(fresh->forward(x), synthetic_batch(999).second).backward();
  EXPECT_NO_THROW(fresh_optimizer->step());
}

TEST_F(CheckpointTest, AMismatchIsNamedAndChangesNothing) {
  auto model = small_resnet();
  demon::save_checkpoint(path("resnet.pt"), *model);
  // Another architecture.
  auto vgg = std::make_shared<VggNet>();
  const int64_t before = parameter_count(*vgg);
  try {
    demon::load_checkpoint(path("resnet.pt"), *vgg);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"stem.weight\""), std::string::npos) << e.what();
  }
  EXPECT_EQ(parameter_count(*vgg), before);
  // A wider checkpoint does not fit a narrower model.
  auto narrow =
      resnet18_cifar10::ResNet18(resnet18_cifar10::ResNetOptions().width(0.0625).num_classes(4));
  try {
    demon::load_checkpoint(path("resnet.pt"), *narrow);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("stem.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("only shrinks"), std::string::npos) << e.what();
  }
  // Asking for optimizer state a model-only checkpoint does not have.
  auto same = small_resnet();
  auto optimizer = adamw(same);
  EXPECT_THROW(demon::load_checkpoint(path("resnet.pt"), *same, optimizer.get()),
               std::invalid_argument);
}

TEST_F(CheckpointTest, UnreadableFilesAreClearErrors) {
  auto model = small_resnet();
  try {
    demon::load_checkpoint(path("missing.pt"), *model);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pt"), std::string::npos) << e.what();
  }
  torch::save(torch::ones({3}), path("tensor.pt"));
  EXPECT_THROW(demon::load_checkpoint(path("tensor.pt"), *model), std::invalid_argument);
  // A manifest from another version, or damaged, is named as such.
  const auto message_for = [&](const std::string& manifest) {
    torch::serialize::OutputArchive archive;
    archive.write("manifest", c10::IValue(manifest));
    archive.save_to(path("other.pt"));
    try {
      demon::load_checkpoint(path("other.pt"), *model);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string newer =
      message_for(R"({"format": "demon-checkpoint", "version": 2, "tensors": []})");
  EXPECT_NE(newer.find("version 2; this demon reads \"demon-checkpoint\" version 1"),
            std::string::npos)
      << newer;
  EXPECT_NE(message_for("{not json").find("damaged manifest"), std::string::npos);
  EXPECT_NE(message_for(R"({"format": "demon-checkpoint", "version": 1, "tensors": [{"name": 3}]})")
                .find("damaged manifest (tensor entry 0)"),
            std::string::npos);
}

// A run resumed from a checkpoint continues exactly like the uninterrupted run: same
// parameters, bit for bit, after more steps and more prune events.
TEST_F(CheckpointTest, ResumeIsBitIdentical) {
  // Units are removed at steps 60, 75 and 90; cut between events, so that the activity gathered
  // since the last event must be carried over, with units removed both before and after the cut.
  const int64_t steps = 90, cut = 67;
  auto model = small_resnet();
  auto optimizer = adamw(model);
  DemonPruner pruner(model.ptr(), optimizer, pruning_options(steps));
  int64_t removed_before_cut = 0, removed_after_cut = 0;
  pruner.on_prune([&](const demon::PruneReport& r) {
    (r.step < cut ? removed_before_cut : removed_after_cut) += r.units_removed;
  });
  train(pruner, model, 0, cut);
  demon::save_checkpoint(path("run.pt"), *model, optimizer.get(), &pruner, {{"step", cut}});
  const auto summary_at_cut = pruner.summary().to_json();
  train(pruner, model, cut, steps);
  ASSERT_GT(removed_before_cut, 0);
  ASSERT_GT(removed_after_cut, 0);

  auto resumed = small_resnet(/*seed=*/77);  // a fresh dense model; its init is overwritten
  auto resumed_optimizer = adamw(resumed);
  DemonPruner resumed_pruner(resumed.ptr(), resumed_optimizer, pruning_options(steps));
  const auto extra =
      demon::load_checkpoint(path("run.pt"), *resumed, resumed_optimizer.get(), &resumed_pruner);
  EXPECT_EQ(extra.at("step"), cut);
  EXPECT_EQ(resumed_pruner.current_step(), cut);
  EXPECT_EQ(resumed_pruner.prune_events(), 4);  // steps 15, 30, 45, 60
  // Before its first step the loaded pruner reports the pruned widths it saved, not the initial.
  EXPECT_EQ(resumed_pruner.summary().to_json(), summary_at_cut);
  train(resumed_pruner, resumed, cut, steps);

  EXPECT_EQ(resumed_pruner.prune_events(), pruner.prune_events());
  EXPECT_EQ(resumed_pruner.summary().to_json(), pruner.summary().to_json());
  expect_bitwise_equal(snapshot(*resumed), snapshot(*model), "resumed run");
  auto buffers = model->named_buffers();
  for (const auto& item : resumed->named_buffers()) {
    EXPECT_TRUE(torch::equal(item.value(), buffers[item.key()])) << item.key();
  }
}

// An automatic λ's unit is measured over λ's rise (steps 0..22 of 90 here) and refreshed at the
// checks (every 3 steps): a checkpoint between checks, mid-measurement, resumes exactly.
TEST_F(CheckpointTest, ResumeMidMeasurementOfAnAutomaticLambdaIsBitIdentical) {
  const int64_t steps = 90, cut = 11;
  const auto options = DemonOptions(steps).lambda_relative(3.0).prune_every(12).seed(3);
  auto model = small_resnet();
  auto optimizer = adamw(model);
  DemonPruner pruner(model.ptr(), optimizer, options);
  ASSERT_EQ(pruner.gradient_scale()->until_step(), 23);
  train(pruner, model, 0, cut);
  demon::save_checkpoint(path("run.pt"), *model, optimizer.get(), &pruner, {});
  train(pruner, model, cut, steps);

  auto resumed = small_resnet(/*seed=*/77);
  auto resumed_optimizer = adamw(resumed);
  DemonPruner resumed_pruner(resumed.ptr(), resumed_optimizer, options);
  demon::load_checkpoint(path("run.pt"), *resumed, resumed_optimizer.get(), &resumed_pruner);
  EXPECT_EQ(resumed_pruner.gradient_scale()->observations(), cut);
  train(resumed_pruner, resumed, cut, steps);

  EXPECT_GT(pruner.summary().neural_sparsity(), 0.0);
  EXPECT_EQ(resumed_pruner.gradient_scale()->value(), pruner.gradient_scale()->value());
  EXPECT_EQ(resumed_pruner.lambda_peak(), pruner.lambda_peak());
  EXPECT_EQ(resumed_pruner.summary().to_json(), pruner.summary().to_json());
  expect_bitwise_equal(snapshot(*resumed), snapshot(*model), "resumed run");
}

TEST_F(CheckpointTest, ResumeKeepsTheInitialSizesOfBudgetsAndFloors) {
  // A parameters budget and fractional floors are measured against the model as first seen;
  // after a resume the pruner sees an already-pruned model first, so those sizes must come from
  // the checkpoint (they did not: the resumed budget read a ratio of 1 and pressed on).
  const int64_t steps = 90, cut = 67;
  const auto options = pruning_options(steps)
                           .lambda_peak(0.02)
                           .target(0.6)
                           .target_metric(demon::BudgetMetric::kParameters)
                           .target_by(0.5)
                           .min_width_fraction(0.25);
  auto model = small_resnet();
  auto optimizer = adamw(model);
  DemonPruner pruner(model.ptr(), optimizer, options);
  train(pruner, model, 0, cut);
  ASSERT_LT(pruner.cost_ratio(), 0.95);  // units were cut before the checkpoint
  demon::save_checkpoint(path("run.pt"), *model, optimizer.get(), &pruner);
  const double ratio_at_cut = pruner.cost_ratio();
  train(pruner, model, cut, steps);

  auto resumed = small_resnet(/*seed=*/77);
  auto resumed_optimizer = adamw(resumed);
  DemonPruner resumed_pruner(resumed.ptr(), resumed_optimizer, options);
  demon::load_checkpoint(path("run.pt"), *resumed, resumed_optimizer.get(), &resumed_pruner);
  train(resumed_pruner, resumed, cut, cut + 1);
  EXPECT_DOUBLE_EQ(resumed_pruner.cost_ratio(), ratio_at_cut);
  train(resumed_pruner, resumed, cut + 1, steps);
  EXPECT_EQ(resumed_pruner.summary().to_json(), pruner.summary().to_json());
  expect_bitwise_equal(snapshot(*resumed), snapshot(*model), "resumed budget run");
}

TEST_F(CheckpointTest, ResumingWithOtherOptionsIsRefused) {
  auto model = small_resnet();
  auto optimizer = adamw(model);
  DemonPruner pruner(model.ptr(), optimizer, pruning_options(40));
  train(pruner, model, 0, 3);
  demon::save_checkpoint(path("run.pt"), *model, optimizer.get(), &pruner);
  auto other = small_resnet();
  auto other_optimizer = adamw(other);
  DemonPruner other_pruner(other.ptr(), other_optimizer, pruning_options(40).lambda_peak(0.2));
  const int64_t before = parameter_count(*other);
  EXPECT_THROW(demon::load_checkpoint(path("run.pt"), *other, other_optimizer.get(), &other_pruner),
               std::invalid_argument);
  EXPECT_EQ(parameter_count(*other), before);
  EXPECT_TRUE(other_optimizer->state().empty());  // the optimizer's section was not taken
  EXPECT_EQ(other_pruner.current_step(), 0);

  // Another optimizer: its load fails after the pruner's section was taken; both are undone.
  auto sgd_model = small_resnet();
  auto sgd = std::make_shared<torch::optim::SGD>(sgd_model->parameters(),
                                                 torch::optim::SGDOptions(0.1).momentum(0.9));
  // The AdamW run's resolved options (auto would give SGD its own growth limit, 2, and the
  // options check would refuse first), so that it is the optimizer's section that fails.
  DemonPruner sgd_pruner(
      sgd_model.ptr(), sgd,
      pruning_options(40).controller_max_growth(demon::default_controller_max_growth(*optimizer)));
  const std::string pruner_before = state_of(sgd_pruner);
  try {
    demon::load_checkpoint(path("run.pt"), *sgd_model, sgd.get(), &sgd_pruner);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "its optimizer state does not load (another optimizer, or damaged)"),
              std::string::npos)
        << e.what();
  }
  // Exactly as before: not even the noise generators the pruner's section brought stay behind.
  EXPECT_EQ(state_of(sgd_pruner), pruner_before);
  EXPECT_EQ(sgd_pruner.current_step(), 0);
  EXPECT_TRUE(sgd->state().empty());
  EXPECT_EQ(parameter_count(*sgd_model), before);
  train(sgd_pruner, sgd_model, 0, 2);  // and the run goes on
  EXPECT_EQ(sgd_pruner.current_step(), 2);
}

// Every tensor of a narrower run fits a wider model as if pruned. The run's recorded starting
// size tells the user (a warning, not an error: a run that began from a pruned model, a second
// pruning stage, also starts smaller than the dense model it resumes into).
TEST_F(CheckpointTest, ANarrowerRunIntoAWiderModelIsWarnedAbout) {
  auto narrow =
      resnet18_cifar10::ResNet18(resnet18_cifar10::ResNetOptions().width(0.0625).num_classes(4));
  auto optimizer = std::make_shared<torch::optim::AdamW>(narrow->parameters());
  DemonPruner pruner(narrow.ptr(), optimizer, pruning_options(10));
  demon::save_checkpoint(path("narrow.pt"), *narrow, optimizer.get(), &pruner);

  std::vector<std::string> warnings;
  const auto previous =
      demon::set_warning_handler([&](const std::string& w) { warnings.push_back(w); });
  auto wide = small_resnet();
  const std::string expected =
      "comes from a run that started from a model of " + std::to_string(parameter_count(*narrow)) +
      " parameters; this model has " + std::to_string(parameter_count(*wide));
  demon::load_checkpoint(path("narrow.pt"), *wide);
  auto same = resnet18_cifar10::ResNet18(
      resnet18_cifar10::ResNetOptions().width(0.0625).num_classes(4));  // the run's own model
  demon::load_checkpoint(path("narrow.pt"), *same);
  demon::set_warning_handler(previous);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(expected), std::string::npos) << warnings[0];
  EXPECT_EQ(parameter_count(*wide), parameter_count(*narrow));
}

// LibTorch attaches optimizer state to parameters by position and checks no shape: state of other
// parameters must be refused at load, not fail at the next step.
TEST_F(CheckpointTest, OptimizerStateOfOtherShapesIsRefused) {
  auto model = small_resnet();
  auto narrower =
      resnet18_cifar10::ResNet18(resnet18_cifar10::ResNetOptions().width(0.0625).num_classes(4));
  auto optimizer = std::make_shared<torch::optim::AdamW>(narrower->parameters());
  auto [images, labels] = synthetic_batch(0);
  torch::cross_entropy_loss(narrower->forward(images), labels).backward();
  optimizer->step();
  demon::save_checkpoint(path("mixed.pt"), *model, optimizer.get());

  auto fresh = small_resnet(/*seed=*/5);
  auto fresh_optimizer = adamw(fresh);
  const auto before = fresh->stem->weight.clone();
  try {
    demon::load_checkpoint(path("mixed.pt"), *fresh, fresh_optimizer.get());
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the optimizer state of \"stem.weight\" has shape "
                                         "[4, 3, 3, 3], the tensor [8, 3, 3, 3]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fresh_optimizer->state().empty());
  EXPECT_TRUE(torch::equal(fresh->stem->weight, before));
  // The options it would have taken from the checkpoint (lr 1e-3) are given back, too.
  EXPECT_DOUBLE_EQ(fresh_optimizer->param_groups()[0].options().get_lr(), 2e-2);

  // The same for state of another dtype (AdamW would fail inside addcmul_).
  std::vector<torch::Tensor> doubles;
  for (const auto& p : model->parameters()) {
    doubles.push_back(p.detach().to(torch::kDouble).requires_grad_());
    doubles.back().mutable_grad() = torch::ones_like(doubles.back());
  }
  auto double_optimizer = std::make_shared<torch::optim::AdamW>(doubles);
  double_optimizer->step();
  demon::save_checkpoint(path("double.pt"), *model, double_optimizer.get());
  try {
    demon::load_checkpoint(path("double.pt"), *fresh, fresh_optimizer.get());
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("the optimizer state of \"stem.weight\" cannot step "
                                         "it: exp_avg is Double, not Float"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fresh_optimizer->state().empty());
}

// The optimizer takes the options its state was saved with (as PyTorch's load_state_dict does,
// and LibTorch 2.x's load; 1.13's keeps its own, which load_checkpoint makes up for): state saved
// without AMSGrad or RMSprop's momentum loads into an optimizer that uses them, which stops
// using them, and steps.
TEST_F(CheckpointTest, TheOptimizerTakesTheSavedOptions) {
  auto model = small_resnet();
  auto [images, labels] = synthetic_batch(0);
  torch::cross_entropy_loss(model->forward(images), labels).backward();
  auto plain = adamw(model);  // lr 2e-2, no AMSGrad
  plain->step();
  demon::save_checkpoint(path("plain.pt"), *model, plain.get());
  auto rms = std::make_shared<torch::optim::RMSprop>(model->parameters(),
                                                     torch::optim::RMSpropOptions(0.03));
  rms->step();
  demon::save_checkpoint(path("rms.pt"), *model, rms.get());

  auto fresh = small_resnet(/*seed=*/5);
  const auto steps = [&](torch::optim::Optimizer& optimizer) {
    fresh->zero_grad();
    torch::cross_entropy_loss(fresh->forward(images), labels).backward();
    optimizer.step();
  };
  torch::optim::AdamW amsgrad(fresh->parameters(),
                              torch::optim::AdamWOptions(0.5).amsgrad(true).weight_decay(0));
  demon::load_checkpoint(path("plain.pt"), *fresh, &amsgrad);
  const auto& adamw_options =
      static_cast<torch::optim::AdamWOptions&>(amsgrad.param_groups()[0].options());
  EXPECT_FALSE(adamw_options.amsgrad());
  EXPECT_DOUBLE_EQ(adamw_options.lr(), 2e-2);
  EXPECT_DOUBLE_EQ(adamw_options.weight_decay(), 5e-4);
  steps(amsgrad);

  torch::optim::RMSprop momentum(fresh->parameters(),
                                 torch::optim::RMSpropOptions(0.5).momentum(0.9).centered(true));
  demon::load_checkpoint(path("rms.pt"), *fresh, &momentum);
  const auto& rms_options =
      static_cast<torch::optim::RMSpropOptions&>(momentum.param_groups()[0].options());
  EXPECT_EQ(rms_options.momentum(), 0.0);
  EXPECT_FALSE(rms_options.centered());
  EXPECT_DOUBLE_EQ(rms_options.lr(), 0.03);
  steps(momentum);
}

// A failed write leaves the previous checkpoint in place, byte for byte.
TEST_F(CheckpointTest, WritesAreAtomic) {
  auto model = small_resnet();
  const std::string file = path("ckpt.pt");
  demon::save_checkpoint(file, *model, nullptr, nullptr, {{"version", 1}});
  const std::string good = read_bytes(file);
  ASSERT_FALSE(good.empty());
  // Make the temporary file impossible to create: a directory stands in its place.
  fs::create_directories(file + ".tmp." + std::to_string(::getpid()));
  {
    torch::NoGradGuard no_grad;
    model->stem->weight.fill_(42.0);
  }
  EXPECT_ANY_THROW(demon::save_checkpoint(file, *model, nullptr, nullptr, {{"version", 2}}));
  EXPECT_EQ(read_bytes(file), good);
  auto fresh = small_resnet();
  EXPECT_EQ(demon::load_checkpoint(file, *fresh).at("version"), 1);
  EXPECT_FALSE(torch::equal(fresh->stem->weight, model->stem->weight));
}

}  // namespace
