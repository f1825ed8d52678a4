#pragma once

// Checks shared by the surgery tests: a cut model's module options agree with its tensors, and
// its outputs match the uncut model's.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>

#include "demon/channel_selection.h"
#include "graph_support.h"
#include "models.h"
#include "support.h"

namespace demon::testing {

// A module of type Impl built afresh from `module`'s options has tensors of the same shapes.
template <typename Impl>
bool rebuilds_from_options(torch::nn::Module& module, const std::string& name) {
  auto* typed = dynamic_cast<Impl*>(&module);
  if (typed == nullptr) {
    return false;
  }
  Impl fresh(typed->options);
  const auto params = typed->named_parameters(/*recurse=*/false);
  const auto fresh_params = fresh.named_parameters(/*recurse=*/false);
  for (const auto& item : params) {
    if (!fresh_params.contains(item.key())) {
      ADD_FAILURE() << name << "." << item.key() << " is not in a module built from its options";
      continue;
    }
    EXPECT_EQ(fresh_params[item.key()].sizes(), item.value().sizes()) << name << "." << item.key();
  }
  const auto fresh_buffers = fresh.named_buffers(/*recurse=*/false);
  for (const auto& item : typed->named_buffers(/*recurse=*/false)) {
    if (item.value().dim() > 0 && fresh_buffers.contains(item.key())) {
      EXPECT_EQ(fresh_buffers[item.key()].sizes(), item.value().sizes())
          << name << "." << item.key();
    }
  }
  return true;
}

// A convolution's weight is [out, in/groups, k...], a transposed one's [in, out/groups, k...].
template <typename Conv>
bool conv_matches_options(torch::nn::Module& module, const std::string& name, bool transposed) {
  auto* conv = dynamic_cast<Conv*>(&module);
  if (conv == nullptr) {
    return false;
  }
  const auto& o = conv->options;
  std::vector<int64_t> expected = {transposed ? o.in_channels() : o.out_channels(),
                                   (transposed ? o.out_channels() : o.in_channels()) / o.groups()};
  const auto kernel = torch::IntArrayRef(o.kernel_size()).vec();
  expected.insert(expected.end(), kernel.begin(), kernel.end());
  EXPECT_EQ(conv->weight.sizes().vec(), expected) << name;
  if (conv->bias.defined()) {
    EXPECT_EQ(conv->bias.size(0), o.out_channels()) << name;
  }
  return true;
}

// Every module's options agree with its tensors (what printing, cloning and serialization read):
// the module its options describe has the shapes the cut one has.
inline void expect_options_match_shapes(torch::nn::Module& model) {
  using namespace torch::nn;
  for (const auto& item : model.named_modules()) {
    auto& module = *item.value();
    const std::string& name = item.key();
    if (auto* s = dynamic_cast<demon::ChannelSelectionImpl*>(&module)) {
      EXPECT_EQ(s->source.numel(), s->target.numel()) << name;
      continue;
    }
    conv_matches_options<Conv1dImpl>(module, name, false) ||
        conv_matches_options<Conv2dImpl>(module, name, false) ||
        conv_matches_options<Conv3dImpl>(module, name, false) ||
        conv_matches_options<ConvTranspose1dImpl>(module, name, true) ||
        conv_matches_options<ConvTranspose2dImpl>(module, name, true) ||
        conv_matches_options<ConvTranspose3dImpl>(module, name, true) ||
        rebuilds_from_options<LinearImpl>(module, name) ||
        rebuilds_from_options<BatchNorm1dImpl>(module, name) ||
        rebuilds_from_options<BatchNorm2dImpl>(module, name) ||
        rebuilds_from_options<BatchNorm3dImpl>(module, name) ||
        rebuilds_from_options<GroupNormImpl>(module, name) ||
        rebuilds_from_options<LayerNormImpl>(module, name);
  }
}

// Train- and eval-mode outputs. Dropout is switched off for the train-mode pass: a mask drawn
// for fewer units is a different random draw, which says nothing about the cut.
inline std::pair<torch::Tensor, torch::Tensor> outputs(const std::shared_ptr<TestModel>& model,
                                                       const torch::Tensor& x) {
  const double p = model->dropout;
  model->dropout = 0.0;
  auto result = outputs_train_eval(model, x);
  model->dropout = p;
  return result;
}

// Outputs of a model before and after a cut; both are computed in double (DoublePrecision).
inline void expect_close(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_EQ(a.scalar_type(), torch::kDouble) << what;
  EXPECT_TRUE(torch::allclose(a, b, kTwinRtol, kTwinAtol))
      << what << ": max diff " << (a - b).abs().max().item<double>();
}

}  // namespace demon::testing
