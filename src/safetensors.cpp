#include "demon/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include "demon/errors.h"
#include "detail/atomic_file.h"

namespace demon {
namespace {

using json = nlohmann::json;

// The safetensors names of the dtypes we write and read.
const std::vector<std::pair<torch::ScalarType, std::string>>& dtype_names() {
  static const std::vector<std::pair<torch::ScalarType, std::string>> names = {
      {torch::kFloat32, "F32"},   {torch::kFloat64, "F64"}, {torch::kFloat16, "F16"},
      {torch::kBFloat16, "BF16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
      {torch::kInt16, "I16"},     {torch::kInt8, "I8"},     {torch::kUInt8, "U8"},
      {torch::kBool, "BOOL"}};
  return names;
}

std::string dtype_name(torch::ScalarType type, const std::string& tensor) {
  for (const auto& [t, name] : dtype_names())
    if (t == type)
      return name;
  throw ValueError("demon::save_safetensors: tensor \"" + tensor + "\" has dtype " +
                   std::string(c10::toString(type)) + ", which safetensors cannot hold here");
}

torch::ScalarType dtype_of(const std::string& name) {
  for (const auto& [t, n] : dtype_names())
    if (n == name)
      return t;
  throw RuntimeError("unsupported dtype \"" + name + "\"");
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  std::set<std::string> seen;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw ValueError("demon::save_safetensors: invalid tensor name \"" + name + "\"");
    if (!seen.insert(name).second)
      throw ValueError("demon::save_safetensors: tensor name \"" + name + "\" repeated");
    const std::string dtype = dtype_name(tensor.scalar_type(), name);
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const auto bytes = static_cast<int64_t>(cpu.numel() * cpu.element_size());
    header[name] = {
        {"dtype", dtype}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  detail::replace_file_atomically(path, [&](const std::string& temp) {
    std::ofstream out(temp, std::ios::binary);
    const uint64_t size = text.size();
    unsigned char prefix[8];
    for (int i = 0; i < 8; ++i)
      prefix[i] = static_cast<unsigned char>((size >> (8 * i)) & 0xff);  // little-endian
    out.write(reinterpret_cast<const char*>(prefix), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& tensor : data)
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    out.flush();
    if (!out)
      throw RuntimeError("demon::save_safetensors: cannot write " + temp);
  });
}

SafetensorsFile load_safetensors(const std::string& path) {
  const std::string where = "demon::load_safetensors(\"" + path + "\")";
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    throw RuntimeError(where + ": cannot open the file");
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char prefix[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(prefix), 8))
    throw RuntimeError(where + ": shorter than the 8-byte header size");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | prefix[i];
  if (header_size > file_size - 8)
    throw RuntimeError(where + ": header size " + std::to_string(header_size) +
                       " exceeds the file (" + std::to_string(file_size) + " bytes)");
  std::string text(header_size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& error) {
    throw RuntimeError(where + ": malformed header: " + error.what());
  }
  if (!header.is_object())
    throw RuntimeError(where + ": the header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_size;
  SafetensorsFile file;
  std::vector<std::pair<uint64_t, std::pair<std::string, torch::Tensor>>> by_offset;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw RuntimeError(where + ": metadata \"" + key + "\" is not a string");
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    try {
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      const auto shape = entry.at("shape").get<std::vector<int64_t>>();
      const auto type = dtype_of(entry.at("dtype").get<std::string>());
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        throw RuntimeError("data offsets outside the data (" + std::to_string(data_size) +
                           " bytes)");
      uint64_t numel = 1;
      for (int64_t d : shape) {
        if (d < 0)
          throw RuntimeError("negative dimension");
        numel *= static_cast<uint64_t>(d);
      }
      const uint64_t bytes = numel * c10::elementSize(type);
      if (bytes != offsets[1] - offsets[0])
        throw RuntimeError("shape and dtype make " + std::to_string(bytes) +
                           " bytes, the offsets " + std::to_string(offsets[1] - offsets[0]));
      auto tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
      in.seekg(static_cast<std::streamoff>(8 + header_size + offsets[0]));
      in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
      if (!in)
        throw RuntimeError("data unreadable");
      by_offset.push_back({offsets[0], {name, tensor}});
    } catch (const std::exception& error) {  // json's errors and the checks above
      throw RuntimeError(where + ": tensor \"" + name + "\": " + error.what());
    }
  }
  // The header comes back sorted by name; the file's order is the data's (ties: empty
  // tensors, by name).
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& entry : by_offset)
    file.tensors.push_back(std::move(entry.second));
  return file;
}

}  // namespace demon
