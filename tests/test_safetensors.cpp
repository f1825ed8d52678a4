// safetensors files: what save_safetensors writes is what the format says, and reads back.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "demon/safetensors.h"

namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("demon_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(SafetensorsTest, RoundTripsEveryDtypeShapeAndMetadata) {
  torch::manual_seed(0);
  const demon::NamedTensors tensors = {
      {"layer1.0.conv1.weight", torch::randn({4, 3, 3, 3})},
      {"bn.num_batches_tracked", torch::tensor(7, torch::kLong)},  // 0-dim
      {"half", torch::randn({5}).to(torch::kFloat16)},
      {"brain", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"double", torch::randn({3}, torch::kFloat64)},
      {"ints", torch::arange(6, torch::kInt32).view({2, 3})},
      {"bytes", torch::tensor({1, 2, 255}, torch::kUInt8)},
      {"mask", torch::tensor({true, false})},
      {"empty", torch::empty({0, 4})},
      {"strided", torch::randn({4, 6}).t()},  // not contiguous
  };
  const auto path = temp_path("roundtrip.safetensors");
  demon::save_safetensors(path, tensors, {{"format", "pt"}, {"widths", "{\"a\": 3}"}});
  const auto file = demon::load_safetensors(path);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(file.tensors[i].first, tensors[i].first) << "file order is the written order";
    EXPECT_EQ(file.tensors[i].second.scalar_type(), tensors[i].second.scalar_type());
    EXPECT_EQ(file.tensors[i].second.sizes(), tensors[i].second.sizes()) << tensors[i].first;
    EXPECT_TRUE(torch::equal(file.tensors[i].second, tensors[i].second)) << tensors[i].first;
  }
  EXPECT_EQ(file.metadata.at("format"), "pt");
  EXPECT_EQ(file.metadata.at("widths"), "{\"a\": 3}");

  // The layout the format specifies: u64 little-endian header size, JSON header, data aligned
  // to 8 bytes, offsets covering the data without gaps.
  const auto bytes = read_bytes(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i)
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  EXPECT_EQ((8 + header_size) % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  EXPECT_EQ(header.at("layer1.0.conv1.weight").at("dtype"), "F32");
  EXPECT_EQ(header.at("brain").at("dtype"), "BF16");
  EXPECT_EQ(header.at("layer1.0.conv1.weight").at("shape"), nlohmann::json({4, 3, 3, 3}));
  uint64_t end = 0;
  for (const auto& [name, entry] : header.items())
    if (name != "__metadata__")
      end = std::max(end, entry.at("data_offsets")[1].get<uint64_t>());
  EXPECT_EQ(8 + header_size + end, bytes.size());
  fs::remove(path);
}

TEST(SafetensorsTest, BadInputIsAClearErrorAndLeavesTheFileAlone) {
  const auto path = temp_path("bad.safetensors");
  demon::save_safetensors(path, {{"a", torch::ones({3})}});
  const auto good = read_bytes(path);
  EXPECT_THROW(demon::save_safetensors(path, {{"a", torch::ones(1)}, {"a", torch::ones(1)}}),
               std::invalid_argument);
  EXPECT_THROW(demon::save_safetensors(path, {{"", torch::ones(1)}}), std::invalid_argument);
  try {
    demon::save_safetensors(path,
                            {{"b", torch::ones(1)}, {"z", torch::ones(2, torch::kComplexFloat)}});
    ADD_FAILURE() << "a complex tensor was written";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("\"z\""), std::string::npos) << error.what();
  }
  EXPECT_EQ(read_bytes(path), good) << "a failed save changed the file";

  auto expect_error = [&](const std::string& bytes, const std::string& fragment) {
    write_bytes(path, bytes);
    try {
      demon::load_safetensors(path);
      ADD_FAILURE() << "no error for " << fragment;
    } catch (const std::runtime_error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
    }
  };
  expect_error(good.substr(0, 5), "shorter than");
  expect_error(good.substr(0, good.size() - 4), "offsets outside");
  std::string huge = good;
  huge[6] = '\x7f';  // a header size far beyond the file
  expect_error(huge, "exceeds the file");
  std::string garbled = good;
  garbled[9] = '#';
  expect_error(garbled, "malformed header");
  EXPECT_THROW(demon::load_safetensors(path + ".missing"), std::runtime_error);
  fs::remove(path);
}

}  // namespace
