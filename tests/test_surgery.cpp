// prune_units on the test models: a cut of planted dead units leaves the function unchanged, on
// CPU and CUDA, within the width floors, and refuses bad requests.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "demon/errors.h"
#include "demon/graph.h"
#include "demon/surgery.h"
#include "detail/torch_compat.h"
#include "graph_support.h"
#include "models.h"
#include "support.h"
#include "surgery_support.h"

namespace {

using demon::DependencyGraph;
using namespace demon::testing;

struct Case {
  std::string name;
  std::function<std::shared_ptr<TestModel>()> make;
  std::vector<std::pair<std::string, size_t>> kill;  // (group name prefix, position)
  int64_t expected_parameter_drop;                   // worked out by hand from the shapes
};

// How gtest (and ctest's test names) show a case.
void PrintTo(const Case& c, std::ostream* out) {
  *out << c.name;
}

std::vector<Case> cases() {
  return {
      // c1 unit: 3·9 (c1) + 2 (b1) + 12·9 (c2 input) = 137; c3 unit: 12·9 + 2 + 20·16 (fc1
      // input through flatten) = 430; fc1 unit: 160 + 1 + 5 = 166; c2 unit: 8·9 + 1 + 2 + 10·9.
      // Elements in a removed row *and* a removed column count once: c2 (2 c1 columns × 1 row
      // × 9), c3 (1 c2 column × 2 rows × 9), fc1 (2 c3 blocks of 16 × 1 row).
      {"Vgg",
       [] { return std::make_shared<VggNet>(); },
       {{"c1", 1}, {"c1", 5}, {"c3", 0}, {"c3", 9}, {"fc1", 3}, {"c2", 4}},
       2 * 137 + 2 * 430 + 166 + 165 - 18 - 18 - 32},
      // Stage channel: stem 27+2, block1 conv1 in 72, conv2 out 72, bn2 2, block2 the same,
      // block3 conv1 in 108, proj in 12 = 441. block1.conv1 unit: 72 + 2 + 72 = 146.
      // block3.conv2 unit (coupled with proj): 108 + 2 + 8 + 2 + 5 (head input) = 125.
      // Counted twice above: block1.conv1[0, 2] and block1.conv2[2, 0] (9 each), proj[7, 2].
      {"ResNetBare",
       [] { return std::make_shared<ResNet>(Block::Shortcut::kBare); },
       {{"stem", 2}, {"block1.conv1", 0}, {"block3.conv2", 7}},
       441 + 146 + 125 - 9 - 9 - 1},
      // With selections: block1 output unit: 72 + 2 + block2.conv1 in 72 = 146; stem unit:
      // 27 + 2 + 72 = 101; block2 output unit: 72 + 2 + block3.conv1 in 108 + proj in 12 = 194.
      {"ResNetSelection",
       [] { return std::make_shared<ResNet>(Block::Shortcut::kSelection); },
       {{"block1.conv2", 3}, {"block1.conv2", 4}, {"stem", 0}, {"block2.conv2", 6}},
       2 * 146 + 101 + 194},
      // a unit: 27 + 2 + 63 = 92; b unit: 3 + 2 + 63 = 68.
      {"Concat",
       [] { return std::make_shared<ConcatNet>(); },
       {{"a", 0}, {"a", 5}, {"b", 2}},
       2 * 92 + 68},
      // expand+depthwise unit: 6 + 2 + 9 + 2 + 8 = 27; project unit: 12 + 2 + 4 = 18; counted
      // twice: project's row 3 × columns 0 and 11.
      {"Depthwise",
       [] { return std::make_shared<DepthwiseNet>(); },
       {{"expand", 0}, {"expand", 11}, {"project", 3}},
       2 * 27 + 18 - 2},
      // fc2 unit: 16 + 1 + 2 (bn) + 4 = 23.
      {"LayerNormMlp",
       [] { return std::make_shared<LayerNormMlp>(); },
       {{"fc2", 0}, {"fc2", 10}, {"fc2", 23}},
       3 * 23},
      // MLP hidden unit: 16 + 1 + 16 = 33.
      {"Transformer",
       [] { return std::make_shared<TransformerBlock>(); },
       {{"fc1", 1}, {"fc1", 30}},
       2 * 33},
      // The same MLP behind torch::nn::MultiheadAttention: 16 + 1 + 16 = 33.
      {"Attention",
       [] { return std::make_shared<AttentionBlock>(); },
       {{"fc1", 0}, {"fc1", 17}},
       2 * 33},
      // One GroupNorm group = 3 channels, each 27 + 2 + 6·9.
      {"GroupNorm", [] { return std::make_shared<GroupNormNet>(); }, {{"c1", 2}}, 3 * 83},
      // Reduced dims read from the autograd node (equal sizes everywhere): c1 unit 27 + 2 + 3.
      {"EqualSizeMean", [] { return std::make_shared<EqualSizeMeanNet>(); }, {{"c1", 5}}, 32},
      // Permute, transpose and amax, each located by its node: c1 unit 27 + 2 + a column of 3
      // in fc and in fc_max.
      {"ChannelsLastHead",
       [] { return std::make_shared<ChannelsLastHeadNet>(); },
       {{"c1", 0}, {"c1", 6}},
       2 * 35},
      // Max(dim), Min(dim) and Unbind, located by their nodes: c1 unit 27 + 2 + 3.
      {"MaxUnbind", [] { return std::make_shared<MaxUnbindNet>(); }, {{"c1", 2}}, 32},
      // A per-channel PReLU slope goes with c1's unit: 27 + 2 + 1 + c2's input column (6·9).
      {"PReLU", [] { return std::make_shared<PReluNet>(); }, {{"c1", 1}, {"c1", 6}}, 2 * 84},
      // InstanceNorm's weight and bias go with c1's unit: 27 + 2 + c2's input column (6·9); its
      // running statistics too (buffers, not counted).
      {"InstanceNorm",
       [] { return std::make_shared<InstanceNormNet>(true, false); },
       {{"c1", 0}, {"c1", 5}},
       2 * 83},
      {"InstanceNormStats",
       [] { return std::make_shared<InstanceNormNet>(true, true); },
       {{"c1", 3}},
       83},
      // Without affine parameters: 27 + 54.
      {"InstanceNormPlain",
       [] { return std::make_shared<InstanceNormNet>(false, false); },
       {{"c1", 7}},
       81},
      // A pixel_shuffle block: 4 c1 filters (4·27) + bn (4·2) + c2's input column (6·9) = 170;
      // a c2 channel: 36 + its 4 input columns of c3 (5·4·9) = 216; counted twice: the 9
      // weights of c2's filter 4 that read the block.
      {"PixelShuffle",
       [] { return std::make_shared<PixelShuffleNet>(); },
       {{"c1", 1}, {"c2", 4}},
       170 + 216 - 9},
      // c1 unit: 27 + 2 (bn1) + a row of up's [in, out, 2, 2] weight (6·4) = 53; up unit: a
      // column of it (8·4) + bias + 2 (bn2) + c2's input column (4·9) = 71; a group of the
      // depthwise transposed conv: a c2 filter (54) + its row (9) + bias + a head column (3) = 67.
      // Counted twice: up's 2x2 kernel at row 3, column 2; c2 filter 1's 9 weights on up's 2.
      {"ConvTranspose",
       [] { return std::make_shared<ConvTransposeNet>(); },
       {{"c1", 3}, {"up", 2}, {"c2", 1}},
       53 + 71 + 67 - 4 - 9},
      // c1 unit: 9 + 2 + c2's input column 6·3 = 29; c2 unit: 24 + 1 + a head column 3 = 28;
      // counted twice: c2 filter 2's 3 weights on each of c1's 0 and 7.
      {"Conv1d",
       [] { return std::make_shared<Conv1dNet>(); },
       {{"c1", 0}, {"c1", 7}, {"c2", 2}},
       2 * 29 + 28 - 6},
      // c1 unit: 81 + 2 + c2's input column 5 = 88.
      {"Conv3d", [] { return std::make_shared<Conv3dNet>(); }, {{"c1", 2}}, 88},
      // c1 unit: 27 + c2's input column 6·9 = 81 (bn1's running statistics are buffers).
      {"NoAffineNorm", [] { return std::make_shared<NoAffineNormNet>(); }, {{"c1", 4}}, 81},
  };
}

class SurgeryTest : public ::testing::TestWithParam<Case> {};

TEST_P(SurgeryTest, RemovingPlantedDeadUnitsPreservesTheFunction) {
  const Case& c = GetParam();
  DoublePrecision double_precision;
  torch::manual_seed(0);
  auto model = c.make();
  const auto x = model->example_input(6);
  auto graph = DependencyGraph::discover(*model, model->forward(x));
  std::vector<int64_t> units;
  for (const auto& [name, position] : c.kill) {
    const int64_t unit = unit_of(graph, name, position);
    ASSERT_TRUE(graph.prunable(unit)) << name << " " << position;
    plant_dead(graph, unit);
    units.push_back(unit);
  }
  const auto [train_before, eval_before] = outputs(model, x);
  const int64_t params_before = parameter_count(*model);
  const int64_t flops_before = graph.flops();
  std::map<std::string, size_t> sizes_before;
  for (const auto& g : graph.groups())
    sizes_before[g.name] = g.units.size();

  auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
  const auto result = demon::prune_units(graph, units, optimizer.get());
  EXPECT_EQ(result.removed.size(), units.size());
  EXPECT_TRUE(result.kept_by_floor.empty());
  EXPECT_EQ(params_before - parameter_count(*model), c.expected_parameter_drop);
  EXPECT_EQ(result.parameters_before - result.parameters_after, c.expected_parameter_drop);
  EXPECT_LT(graph.flops(), flops_before);

  const auto [train_after, eval_after] = outputs(model, x);
  expect_close(train_before, train_after, c.name + " train mode");
  expect_close(eval_before, eval_after, c.name + " eval mode");
  expect_options_match_shapes(*model);

  // The bookkeeping agrees with a fresh discovery of the pruned model.
  auto fresh = DependencyGraph::discover(*model, model->forward(x));
  ASSERT_EQ(fresh.groups().size(), graph.groups().size());
  for (size_t g = 0; g < graph.groups().size(); ++g) {
    EXPECT_EQ(fresh.groups()[g].name, graph.groups()[g].name);
    EXPECT_EQ(fresh.groups()[g].units.size(), graph.groups()[g].units.size())
        << graph.groups()[g].name;
  }
  EXPECT_EQ(fresh.flops(), graph.flops());

  // Training goes on, and every shrunk parameter is still the optimizer's.
  for (int step = 0; step < 3; ++step) {
    optimizer->zero_grad();
    auto loss = model->forward(x).pow(2).mean();
    ASSERT_TRUE(std::isfinite(loss.item<double>()));
    loss.backward();
    optimizer->step();
  }
  for (const auto& item : model->named_parameters()) {
    const auto& p = item.value();
    bool held = false;
    for (const auto& group : optimizer->param_groups()) {
      for (const auto& q : group.params())
        held = held || q.is_same(p);
    }
    EXPECT_TRUE(held) << item.key();
    const auto found = optimizer->state().find(demon::detail::optimizer_state_key(p));
    ASSERT_NE(found, optimizer->state().end()) << item.key();
    const auto& state = static_cast<torch::optim::AdamParamState&>(*found->second);
    EXPECT_EQ(state.exp_avg().sizes(), p.sizes()) << item.key();
    EXPECT_EQ(state.step(), 3) << item.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SurgeryTest, ::testing::ValuesIn(cases()),
                         [](const auto& test_info) { return test_info.param.name; });

// The dense twin of a pruned model, trained alongside with the removed units left in place (and
// dead), must match the pruned model on every kept weight and optimizer moment.
TEST(SurgeryTest, RequestsAreValidatedAndGroupsNeverEmpty) {
  torch::manual_seed(0);
  auto model = std::make_shared<GroupNormNet>();
  const auto x = model->example_input(4);
  auto graph = DependencyGraph::discover(*model, model->forward(x));
  // Pinned units and unknown ids are refused, naming the reason.
  try {
    demon::prune_units(graph, {unit_of(graph, "head", 0)});
    ADD_FAILURE() << "pinned unit accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("model output"), std::string::npos) << e.what();
  }
  EXPECT_THROW(demon::prune_units(graph, {12345}), std::invalid_argument);
  EXPECT_THROW(demon::prune_units(graph, {}, nullptr, demon::PruneOptions().min_width(0)),
               std::invalid_argument);
  // Asking for all 4 groups of c1 keeps the first one (min_width 1); with min_width 2, two.
  const auto& c1 = group_named(graph, "c1");
  std::vector<int64_t> all(c1.units.begin(), c1.units.end());
  const auto result = demon::prune_units(graph, all, nullptr, demon::PruneOptions().min_width(2));
  EXPECT_EQ(result.removed.size(), 2u);
  ASSERT_EQ(result.kept_by_floor.size(), 2u);
  EXPECT_EQ(result.kept_by_floor[0], all[0]);
  EXPECT_EQ(model->gn->options.num_groups(), 2);
  EXPECT_EQ(model->gn->options.num_channels(), 6);
  EXPECT_EQ(model->c1->weight.size(0), 6);
  const std::vector<int64_t> remaining(group_named(graph, "c1").units);
  const auto again = demon::prune_units(graph, remaining);
  EXPECT_EQ(again.removed.size(), 1u);
  EXPECT_EQ(model->c1->weight.size(0), 3);
  EXPECT_NO_THROW(model->forward(x));
  EXPECT_THROW(demon::prune_units(graph, again.removed), std::invalid_argument);  // already gone
}

}  // namespace

namespace {

// The same cut on CUDA: tensors, gradients and optimizer state stay on the device.
TEST(SurgeryCudaTest, PlantedDeadUnitsOnCuda) {
  DEMON_REQUIRE_CUDA();
  for (auto make : {std::function<std::shared_ptr<TestModel>()>(
                        [] { return std::make_shared<ResNet>(Block::Shortcut::kSelection); }),
                    std::function<std::shared_ptr<TestModel>()>(
                        [] { return std::make_shared<DepthwiseNet>(); })}) {
    DoublePrecision double_precision;
    torch::manual_seed(0);
    auto model = make();
    model->to(torch::kCUDA);
    const auto x = model->example_input(6).to(torch::kCUDA);
    auto graph = DependencyGraph::discover(*model, model->forward(x));
    std::vector<int64_t> units;
    for (size_t u = 0; u < graph.units().size(); u += 3) {
      if (graph.prunable(static_cast<int64_t>(u)))
        units.push_back(static_cast<int64_t>(u));
    }
    for (int64_t u : units)
      plant_dead(graph, u);
    auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
    optimizer->zero_grad();
    model->forward(x).pow(2).mean().backward();
    optimizer->step();
    const auto [train_before, eval_before] = outputs(model, x);
    demon::prune_units(graph, units, optimizer.get());
    const auto [train_after, eval_after] = outputs(model, x);
    expect_close(train_before, train_after, "cuda train");
    expect_close(eval_before, eval_after, "cuda eval");
    for (const auto& p : model->parameters()) {
      EXPECT_TRUE(p.is_cuda());
      const auto& state = static_cast<torch::optim::AdamParamState&>(
          *optimizer->state().at(demon::detail::optimizer_state_key(p)));
      EXPECT_TRUE(state.exp_avg().is_cuda());
      EXPECT_EQ(state.exp_avg().sizes(), p.sizes());
    }
    optimizer->zero_grad();
    model->forward(x).pow(2).mean().backward();
    EXPECT_NO_THROW(optimizer->step());
  }
}

}  // namespace

namespace {

// A graph kept alive from before the cut (here: an old loss) holds the parameters' gradient
// accumulators with their old shapes; training after the cut must not trip over them.
TEST(SurgeryTest, AGraphKeptFromBeforeTheCutDoesNotBreakTraining) {
  torch::manual_seed(0);
  auto model = std::make_shared<VggNet>();
  const auto x = model->example_input(4);
  const auto old_loss = model->forward(x).pow(2).mean();  // stays alive on purpose
  auto graph = DependencyGraph::discover(*model, old_loss);
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.1);
  demon::prune_units(graph, {unit_of(graph, "c1", 0), unit_of(graph, "fc1", 2)}, optimizer.get());
  optimizer->zero_grad();
  EXPECT_NO_THROW(model->forward(x).pow(2).mean().backward());
  EXPECT_EQ(model->c1->weight.grad().size(0), 7);
  EXPECT_NO_THROW(optimizer->step());
  EXPECT_TRUE(old_loss.defined());
}

}  // namespace

namespace {

TEST(SurgeryTest, WidthFloorsAndMultiplesKeepRequestedUnits) {
  using demon::group_width_after;
  using demon::PruneOptions;
  // (width, requested, initial) -> width after, per rule.
  EXPECT_EQ(group_width_after(12, 7, 12, PruneOptions()), 5);
  EXPECT_EQ(group_width_after(12, 12, 12, PruneOptions()), 1);
  EXPECT_EQ(group_width_after(12, 12, 12, PruneOptions().min_width(3)), 3);
  EXPECT_EQ(group_width_after(12, 7, 12, PruneOptions().width_multiple(4)), 8);
  EXPECT_EQ(group_width_after(12, 12, 12, PruneOptions().width_multiple(8)), 8);
  EXPECT_EQ(group_width_after(6, 1, 12, PruneOptions().width_multiple(8)), 6);  // never grows
  EXPECT_EQ(group_width_after(12, 7, 16, PruneOptions().min_width_fraction(0.5)), 8);
  EXPECT_EQ(group_width_after(12, 7, 12, PruneOptions().min_width_fraction(0.75).width_multiple(5)),
            10);
  EXPECT_EQ(group_width_after(12, 0, 12, PruneOptions().width_multiple(8)), 12);

  // On a model: c2 (12 channels) asked to lose 7 with multiples of 4 loses 4, the first 3
  // requested stay, and the function is unchanged.
  demon::testing::DoublePrecision double_precision;
  torch::manual_seed(0);
  auto model = std::make_shared<VggNet>();
  const auto x = model->example_input(4);
  auto graph = DependencyGraph::discover(*model, model->forward(x));
  std::vector<int64_t> units;
  for (size_t p : {0, 2, 3, 5, 8, 9, 11})
    units.push_back(unit_of(graph, "c2", p));
  for (int64_t u : units)
    plant_dead(graph, u);
  const auto [train_before, eval_before] = outputs(model, x);
  const auto result =
      demon::prune_units(graph, units, nullptr, demon::PruneOptions().width_multiple(4));
  EXPECT_EQ(model->c2->weight.size(0), 8);
  EXPECT_EQ(result.removed.size(), 4u);
  EXPECT_EQ(result.kept_by_floor, (std::vector<int64_t>{units[0], units[1], units[2]}));
  const auto [train_after, eval_after] = outputs(model, x);
  expect_close(train_before, train_after, "train mode");
  expect_close(eval_before, eval_after, "eval mode");
  EXPECT_THROW(demon::prune_units(graph, {}, nullptr, demon::PruneOptions().width_multiple(0)),
               std::invalid_argument);
  EXPECT_THROW(
      demon::prune_units(graph, {}, nullptr, demon::PruneOptions().min_width_fraction(1.5)),
      std::invalid_argument);
}

}  // namespace
