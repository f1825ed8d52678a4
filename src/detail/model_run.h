#pragma once
// Running a model outside its training step (the forward check's probe, the eval-mode death
// check): on inputs moved to where the model is now, with its training flag restored after.

#include <torch/torch.h>

namespace demon::detail {

/// `input` on the model's device, and in its floating dtype if `input` is floating: the model may
/// have moved since the input was taken (the probe) or given (the death-check batches).
inline torch::Tensor like_model(const torch::Tensor& input, const torch::nn::Module& model) {
  const auto parameters = model.parameters();
  if (parameters.empty() || !input.defined())
    return input;
  const auto& first = parameters.front();
  return input.to(first.device(),
                  input.is_floating_point() ? first.scalar_type() : input.scalar_type());
}

/// Restores a module's training flag when it goes out of scope, exception or not.
class TrainingModeGuard {
 public:
  explicit TrainingModeGuard(torch::nn::Module& module)
      : module_(module), was_training_(module.is_training()) {}
  ~TrainingModeGuard() { module_.train(was_training_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

}  // namespace demon::detail
