// The example's CIFAR-10 reader on arbitrary files. Input: one byte that picks how many records
// the caller expects (the file's own count, one less or one more), then the file's bytes.
// Promises: a file is either read exactly (every label within 0..9, every pixel as stored) or
// refused with std::runtime_error.

#include <torch/torch.h>

#include <stdexcept>
#include <string>

#include "cifar10.h"
#include "fuzz_support.h"

namespace {

using resnet18_cifar10::kRecordBytes;

std::string records_file(const std::vector<int>& labels) {
  std::string bytes;
  for (size_t r = 0; r < labels.size(); ++r) {
    bytes.push_back(static_cast<char>(labels[r]));
    for (int64_t p = 1; p < kRecordBytes; ++p) {
      bytes.push_back(static_cast<char>((p * 7 + static_cast<int64_t>(r) * 13) % 256));
    }
  }
  return bytes;
}

std::vector<std::string> seeds() {
  return {std::string(1, '\1') + records_file({3, 9}),          // good, two records
          std::string(1, '\1') + records_file({0}),             // good, one record
          std::string(1, '\1') + records_file({4, 10}),         // label out of range
          std::string(1, '\0') + records_file({1, 2}),          // one record fewer than expected
          std::string(1, '\1') + records_file({5}).substr(9)};  // truncated
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  demon::fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16 * kRecordBytes) {
    return 0;
  }
  static const demon::fuzz::ScratchFile file("cifar10.bin");
  const size_t file_bytes = size - 1;
  file.write(data + 1, file_bytes);
  const int64_t whole = static_cast<int64_t>(file_bytes) / kRecordBytes;
  const int64_t expected = std::max<int64_t>(0, whole + data[0] % 3 - 1);
  resnet18_cifar10::Dataset dataset;
  try {
    dataset = resnet18_cifar10::read_cifar10_file(file.path(), expected);
  } catch (const std::runtime_error&) {
    return 0;
  }
  if (dataset.size() != expected || static_cast<int64_t>(file_bytes) != expected * kRecordBytes) {
    demon::fuzz::broken("read " + std::to_string(dataset.size()) + " records from " +
                        std::to_string(file_bytes) + " bytes, expected " +
                        std::to_string(expected));
  }
  for (int64_t r = 0; r < expected; ++r) {
    const uint8_t* record = data + 1 + r * kRecordBytes;
    if (record[0] > 9 || dataset.labels[r].item<int64_t>() != record[0]) {
      demon::fuzz::broken("record " + std::to_string(r) + ": label " + std::to_string(record[0]) +
                          " read as " + std::to_string(dataset.labels[r].item<int64_t>()));
    }
    auto stored = torch::from_blob(const_cast<uint8_t*>(record + 1), {3, 32, 32}, torch::kUInt8);
    if (!torch::equal(dataset.images[r], stored)) {
      demon::fuzz::broken("record " + std::to_string(r) + ": pixels differ from the file");
    }
  }
  return 0;
}
