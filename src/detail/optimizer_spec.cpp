#include "detail/optimizer_spec.h"

#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include "detail/torch_compat.h"

namespace demon::detail {
namespace {

using namespace torch::optim;
using Slice = std::function<torch::Tensor(const torch::Tensor&)>;

// A getter/setter pair of a TORCH_ARG tensor field of a param state.
template <typename State>
using Getter = const torch::Tensor& (State::*)() const noexcept;
template <typename State>
using Setter = State& (State::*)(const torch::Tensor&);
#define DEMON_STATE_FIELD(State, name) \
  std::make_pair(static_cast<Getter<State>>(&State::name), static_cast<Setter<State>>(&State::name))

// Slices each defined field of a `State`.
template <typename State, typename... Fields>
StateSlicer slicer_for(Fields... fields) {
  return [fields...](OptimizerParamState& state, const Slice& slice) {
    auto* typed = dynamic_cast<State*>(&state);
    if (typed == nullptr) {
      return false;
    }
    auto apply = [&](auto field) {
      auto [get, set] = field;
      const torch::Tensor& value = (typed->*get)();
      if (value.defined()) {
        (typed->*set)(slice(value));
      }
    };
    (apply(fields), ...);
    return true;
  };
}

template <typename Optimizer>
bool is_a(const torch::optim::Optimizer& optimizer) {
  return dynamic_cast<const Optimizer*>(&optimizer) != nullptr;
}

// Adam's and AdamW's: the moments, and AMSGrad's running maximum when the group uses it.
template <typename State, typename Options>
std::optional<NeededState> adam_needs(const OptimizerParamState& state,
                                      const OptimizerOptions& options) {
  const auto* adam = dynamic_cast<const State*>(&state);
  if (adam == nullptr)
    return std::nullopt;
  NeededState needed = {{"exp_avg", adam->exp_avg()}, {"exp_avg_sq", adam->exp_avg_sq()}};
  const auto* adam_options = dynamic_cast<const Options*>(&options);
  if (adam_options && adam_options->amsgrad())
    needed.emplace_back("max_exp_avg_sq", adam->max_exp_avg_sq());
  return needed;
}

std::optional<NeededState> rmsprop_needs(const OptimizerParamState& state,
                                         const OptimizerOptions& options) {
  const auto* rmsprop = dynamic_cast<const RMSpropParamState*>(&state);
  if (rmsprop == nullptr)
    return std::nullopt;
  NeededState needed = {{"square_avg", rmsprop->square_avg()}};
  if (const auto* rms_options = dynamic_cast<const RMSpropOptions*>(&options)) {
    if (rms_options->momentum() > 0)
      needed.emplace_back("momentum_buffer", rmsprop->momentum_buffer());
    if (rms_options->centered())
      needed.emplace_back("grad_avg", rmsprop->grad_avg());
  }
  return needed;
}

std::optional<NeededState> adagrad_needs(const OptimizerParamState& state,
                                         const OptimizerOptions&) {
  const auto* adagrad = dynamic_cast<const AdagradParamState*>(&state);
  if (adagrad == nullptr)
    return std::nullopt;
  return NeededState{{"sum", adagrad->sum()}};
}

std::optional<NeededState> sgd_needs(const OptimizerParamState& state, const OptimizerOptions&) {
  const auto* sgd = dynamic_cast<const SGDParamState*>(&state);
  if (sgd == nullptr)
    return std::nullopt;
  return NeededState{{"momentum_buffer", sgd->momentum_buffer()}};
}

}  // namespace

const std::vector<OptimizerSpec>& builtin_optimizers() {
  static const std::vector<OptimizerSpec> specs = {
      {"SGD", /*adaptive=*/false, is_a<SGD>,
       slicer_for<SGDParamState>(DEMON_STATE_FIELD(SGDParamState, momentum_buffer)), sgd_needs,
       adopt_saved_options_as<SGDOptions>},
      {"Adam", /*adaptive=*/true, is_a<Adam>,
       slicer_for<AdamParamState>(DEMON_STATE_FIELD(AdamParamState, exp_avg),
                                  DEMON_STATE_FIELD(AdamParamState, exp_avg_sq),
                                  DEMON_STATE_FIELD(AdamParamState, max_exp_avg_sq)),
       adam_needs<AdamParamState, AdamOptions>, adopt_saved_options_as<AdamOptions>},
      {"AdamW", /*adaptive=*/true, is_a<AdamW>,
       slicer_for<AdamWParamState>(DEMON_STATE_FIELD(AdamWParamState, exp_avg),
                                   DEMON_STATE_FIELD(AdamWParamState, exp_avg_sq),
                                   DEMON_STATE_FIELD(AdamWParamState, max_exp_avg_sq)),
       adam_needs<AdamWParamState, AdamWOptions>, adopt_saved_options_as<AdamWOptions>},
      {"RMSprop", /*adaptive=*/true, is_a<RMSprop>,
       slicer_for<RMSpropParamState>(DEMON_STATE_FIELD(RMSpropParamState, square_avg),
                                     DEMON_STATE_FIELD(RMSpropParamState, momentum_buffer),
                                     DEMON_STATE_FIELD(RMSpropParamState, grad_avg)),
       rmsprop_needs, adopt_saved_options_as<RMSpropOptions>},
      {"Adagrad", /*adaptive=*/true, is_a<Adagrad>,
       slicer_for<AdagradParamState>(DEMON_STATE_FIELD(AdagradParamState, sum)), adagrad_needs,
       adopt_saved_options_as<AdagradOptions>},
  };
  return specs;
}
#undef DEMON_STATE_FIELD

const OptimizerSpec* builtin_optimizer(const torch::optim::Optimizer& optimizer) {
  for (const auto& spec : builtin_optimizers()) {
    if (spec.is(optimizer))
      return &spec;
  }
  return nullptr;
}

void adopt_saved_options(torch::serialize::InputArchive& archive,
                         torch::optim::Optimizer& optimizer) {
  for (const auto& spec : builtin_optimizers()) {
    if (spec.adopt_saved_options(archive, optimizer))
      return;
  }
}

}  // namespace demon::detail
