#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace demon {

/// Tensors by name, in the order they are written.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

/// Writes `tensors` in the safetensors format (Hugging Face's: an 8-byte little-endian header
/// size, a JSON header of dtype, shape and byte offsets per name, then the raw data), readable by
/// `safetensors.torch.load_file` in Python. Tensors are copied to the CPU and made contiguous;
/// float32/64, float16, bfloat16, int8/16/32/64, uint8 and bool are supported. `metadata` goes
/// into the header's "__metadata__". The file is replaced atomically: on error, `path` is left as
/// it was. Throws demon::ValueError for an empty or repeated name or an unsupported dtype.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// What a safetensors file holds.
struct SafetensorsFile {
  NamedTensors tensors;  ///< in file order
  std::map<std::string, std::string> metadata;
};

/// Reads a safetensors file (any writer's); throws demon::RuntimeError naming the file and the
/// problem for a truncated file, a malformed header or offsets outside the data.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace demon
