#include "cifar10.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace resnet18_cifar10 {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("CIFAR-10: " + path + ": " + problem);
}

const char* const kTrainFiles[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                   "data_batch_4.bin", "data_batch_5.bin"};
const char* const kTestFile = "test_batch.bin";

}  // namespace

Dataset read_cifar10_file(const std::string& path, int64_t records) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_regular_file(path, error)) {
    fail(path, "missing (expected a file of the CIFAR-10 binary release)");
  }
  const auto bytes = static_cast<int64_t>(fs::file_size(path, error));
  if (error) {
    fail(path, "cannot read its size: " + error.message());
  }
  if (bytes % kRecordBytes != 0) {
    fail(path, "truncated or corrupt: " + std::to_string(bytes) +
                   " bytes is not a whole number of " + std::to_string(kRecordBytes) +
                   "-byte records");
  }
  if (bytes != records * kRecordBytes) {
    fail(path, "wrong size: " + std::to_string(bytes / kRecordBytes) + " records, expected " +
                   std::to_string(records));
  }
  std::vector<uint8_t> raw(static_cast<size_t>(bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(raw.data()), bytes)) {
    fail(path, "read error");
  }
  auto all = torch::from_blob(raw.data(), {records, kRecordBytes}, torch::kUInt8);
  Dataset data;
  data.labels = all.select(1, 0).to(torch::kLong);
  data.images = all.slice(1, 1).reshape({records, 3, 32, 32}).clone();
  const auto bad = data.labels.gt(9).nonzero();
  if (bad.numel() > 0) {
    const int64_t record = bad[0][0].item<int64_t>();
    fail(path, "label " + std::to_string(data.labels[record].item<int64_t>()) + " of record " +
                   std::to_string(record) + " is out of range 0..9");
  }
  return data;
}

std::string find_cifar10(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const auto& candidate : {fs::path(dir), fs::path(dir) / "cifar-10-batches-bin"}) {
    if (fs::is_regular_file(candidate / kTestFile) &&
        fs::is_regular_file(candidate / kTrainFiles[0])) {
      return candidate.string();
    }
  }
  return "";
}

Dataset read_cifar10(const std::string& dir, bool train) {
  const std::string root = find_cifar10(dir);
  if (root.empty()) {
    throw std::runtime_error("CIFAR-10: no data_batch_1.bin and test_batch.bin in " + dir +
                             " or in " + dir + "/cifar-10-batches-bin");
  }
  if (!train) {
    return read_cifar10_file(root + "/" + kTestFile);
  }
  std::vector<torch::Tensor> images, labels;
  for (const char* file : kTrainFiles) {
    auto part = read_cifar10_file(root + "/" + file);
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  return {torch::cat(images), torch::cat(labels)};
}

}  // namespace resnet18_cifar10
