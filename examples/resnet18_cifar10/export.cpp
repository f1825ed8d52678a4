#include "export.h"

#include <cctype>

namespace resnet18_cifar10 {

std::string pytorch_name(const std::string& name) {
  // The blocks are registered as "layer<stage>_<index>".
  if (name.rfind("layer", 0) != 0)
    return name;
  size_t i = 5;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])))
    ++i;
  if (i == 5 || i >= name.size() || name[i] != '_')
    return name;
  std::string out = name;
  out[i] = '.';
  return out;
}

demon::NamedTensors pytorch_state(ResNet18& model) {
  demon::NamedTensors state;
  for (const auto& item : model->named_parameters(/*recurse=*/true))
    state.emplace_back(pytorch_name(item.key()), item.value().detach());
  for (const auto& item : model->named_buffers(/*recurse=*/true))
    state.emplace_back(pytorch_name(item.key()), item.value().detach());
  return state;
}

}  // namespace resnet18_cifar10
