#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace demon {

/// Runs a model on a batch: the forward check after a cut, the eval-mode death check.
using Forward = std::function<torch::Tensor(const torch::Tensor&)>;

/// A model as DemonPruner and the checkpoint helpers take it, in whichever form the training loop
/// holds it:
///
/// - `std::shared_ptr` to a module (shares ownership);
/// - a `TORCH_MODULE` holder, e.g. `Net model;` after `TORCH_MODULE(Net)` (shares its module);
/// - a module by reference, e.g. `NetImpl model;` held by value: not owned, the caller keeps
///   it alive for as long as the pruner lives.
///
/// When the concrete type has `forward(Tensor) -> Tensor`, the reference remembers how to run it:
/// DemonPruner uses that forward to check, after each prune event, that the cut model still runs.
class ModelRef {
 public:
  using Forward = demon::Forward;

  ModelRef(std::nullptr_t) {}  // NOLINT: refused by its users, with a clear error
  ModelRef(std::shared_ptr<torch::nn::Module> model)  // NOLINT: implicit on purpose
      : module_(std::move(model)) {}
  template <typename M, typename = std::enable_if_t<std::is_base_of_v<torch::nn::Module, M>>>
  ModelRef(std::shared_ptr<M> model)  // NOLINT
      : module_(model), forward_(forward_of(model.get())) {}
  template <typename M>
  ModelRef(torch::nn::ModuleHolder<M>& holder)  // NOLINT
      : ModelRef(holder.is_empty() ? std::shared_ptr<M>() : holder.ptr()) {}
  template <typename M, typename = std::enable_if_t<std::is_base_of_v<torch::nn::Module, M>>>
  ModelRef(M& model)  // NOLINT
      : module_(std::shared_ptr<torch::nn::Module>(), &model), forward_(forward_of(&model)) {}

  /// The module; only valid when not null.
  torch::nn::Module& get() const { return *module_; }
  /// Shares ownership, or aliases without owning (a module passed by reference).
  const std::shared_ptr<torch::nn::Module>& ptr() const noexcept { return module_; }
  /// The concrete module's forward(Tensor), or empty when it has none.
  const Forward& forward() const noexcept { return forward_; }
  explicit operator bool() const noexcept { return module_ != nullptr; }

 private:
  // Whether `M` has a forward taking one tensor and returning one.
  template <typename M, typename = void>
  struct HasTensorForward : std::false_type {};
  template <typename M>
  struct HasTensorForward<
      M, std::enable_if_t<std::is_convertible_v<
             decltype(std::declval<M&>().forward(std::declval<torch::Tensor>())), torch::Tensor>>>
      : std::true_type {};

  template <typename M>
  static Forward forward_of(M* model) {
    if constexpr (HasTensorForward<M>::value) {
      if (model != nullptr) {
        return [model](const torch::Tensor& x) -> torch::Tensor { return model->forward(x); };
      }
    }
    return {};
  }

  std::shared_ptr<torch::nn::Module> module_;
  Forward forward_;
};

/// An optimizer as DemonPruner and the checkpoint helpers take it: a `std::shared_ptr` (shares
/// ownership), a reference or a pointer (not owned: the caller keeps it alive), or nullptr where
/// an optimizer is optional.
class OptimizerRef {
 public:
  OptimizerRef(std::nullptr_t = nullptr) {}                         // NOLINT
  OptimizerRef(std::shared_ptr<torch::optim::Optimizer> optimizer)  // NOLINT
      : optimizer_(std::move(optimizer)) {}
  template <typename O, typename = std::enable_if_t<std::is_base_of_v<torch::optim::Optimizer, O>>>
  OptimizerRef(std::shared_ptr<O> optimizer)  // NOLINT
      : optimizer_(std::move(optimizer)) {}
  template <typename O, typename = std::enable_if_t<std::is_base_of_v<torch::optim::Optimizer, O>>>
  OptimizerRef(O& optimizer)  // NOLINT
      : optimizer_(std::shared_ptr<torch::optim::Optimizer>(), &optimizer) {}
  template <typename O, typename = std::enable_if_t<std::is_base_of_v<torch::optim::Optimizer, O>>>
  OptimizerRef(O* optimizer)  // NOLINT
      : optimizer_(std::shared_ptr<torch::optim::Optimizer>(), optimizer) {}

  /// The optimizer, or null.
  torch::optim::Optimizer* get() const noexcept { return optimizer_.get(); }
  const std::shared_ptr<torch::optim::Optimizer>& ptr() const noexcept { return optimizer_; }
  explicit operator bool() const noexcept { return optimizer_ != nullptr; }

 private:
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace demon
