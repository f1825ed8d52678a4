// demon::load_safetensors on arbitrary files. Promises (safetensors.h): a file is read or refused
// with std::runtime_error; what is read writes back (save_safetensors) and reads again bit for bit.

#include <torch/torch.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "demon/safetensors.h"
#include "fuzz_support.h"

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> seeds() {
  const demon::fuzz::ScratchFile file("seed.safetensors");
  std::vector<std::string> out;
  auto add = [&](const demon::NamedTensors& tensors,
                 const std::map<std::string, std::string>& metadata) {
    demon::save_safetensors(file.path(), tensors, metadata);
    out.push_back(file_bytes(file.path()));
  };
  torch::manual_seed(0);
  add({{"weight", torch::randn({2, 3})}, {"bias", torch::arange(3, torch::kLong)}},
      {{"format", "pt"}});
  add({{"half", torch::randn({4}).to(torch::kHalf)},
       {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
       {"mask", torch::tensor({true, false})},
       {"bytes", torch::tensor({1, 2, 3}, torch::kUInt8)},
       {"scalar", torch::tensor(2.5, torch::kDouble)},
       {"empty", torch::zeros({0, 3}, torch::kInt)}},
      {});
  return out;
}

torch::Tensor bytes_of(const torch::Tensor& tensor) {
  return tensor.contiguous().flatten().view(torch::kUInt8);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  demon::fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const demon::fuzz::ScratchFile input("input.safetensors");
  static const demon::fuzz::ScratchFile again("again.safetensors");
  input.write(data, size);
  demon::SafetensorsFile read;
  try {
    read = demon::load_safetensors(input.path());
  } catch (const std::runtime_error&) {
    return 0;
  }
  demon::save_safetensors(again.path(), read.tensors, read.metadata);
  const auto reread = demon::load_safetensors(again.path());
  if (reread.tensors.size() != read.tensors.size() || reread.metadata != read.metadata) {
    demon::fuzz::broken("a file read back differently after writing it");
  }
  for (size_t i = 0; i < read.tensors.size(); ++i) {
    const auto& [name, tensor] = read.tensors[i];
    const auto& [name2, tensor2] = reread.tensors[i];
    if (name != name2 || tensor.scalar_type() != tensor2.scalar_type() ||
        tensor.sizes() != tensor2.sizes() || !torch::equal(bytes_of(tensor), bytes_of(tensor2))) {
      demon::fuzz::broken("tensor \"" + name + "\" changed in a write and read");
    }
  }
  return 0;
}
