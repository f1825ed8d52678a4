#include "pruner/nonfinite_gradient.h"

#include <map>
#include <vector>

namespace demon::detail {

std::string first_nonfinite_gradient(const torch::optim::Optimizer& optimizer,
                                     torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  const auto values_of = [](const torch::Tensor& grad) {
    return grad.is_sparse() ? grad.coalesce().values() : grad;
  };
  // One sum per gradient (NaN and Inf survive a sum), one stack and one sync per device.
  std::map<std::string, std::vector<torch::Tensor>> sums;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      const auto& grad = p.grad();
      if (!grad.defined())
        continue;
      sums[grad.device().str()].push_back(values_of(grad).sum(torch::kDouble));
    }
  }
  bool finite = true;
  for (const auto& [device, of_device] : sums)
    finite = finite && torch::stack(of_device).sum().isfinite().item<bool>();
  if (finite)
    return {};
  // Rare: name the first parameter at fault.
  for (const auto& item : model.named_parameters()) {
    const auto& grad = item.value().grad();
    if (!grad.defined())
      continue;
    if (!values_of(grad).isfinite().all().item<bool>())
      return item.key();
  }
  return "a parameter outside the model";
}

}  // namespace demon::detail
