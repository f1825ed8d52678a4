#pragma once

// CIFAR-10's binary release: data_batch_1.bin ... data_batch_5.bin and test_batch.bin, each
// 10,000 records of 1 label byte and 3,072 pixel bytes (the red, green and blue 32×32 planes).

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace resnet18_cifar10 {

/// Images as uint8 [N, 3, 32, 32] and labels as int64 [N], on the CPU.
struct Dataset {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

constexpr int64_t kRecordBytes = 1 + 3 * 32 * 32;
constexpr int64_t kRecordsPerFile = 10000;

/// Reads one batch file of `records` records. Throws std::runtime_error naming the file and the
/// problem: missing, truncated (not a whole number of records), wrong size, label out of range.
Dataset read_cifar10_file(const std::string& path, int64_t records = kRecordsPerFile);

/// The directory holding the batch files: `dir` itself or its `cifar-10-batches-bin`
/// subdirectory; empty if neither has them.
std::string find_cifar10(const std::string& dir);

/// The training set (all five batches) or the test set, from a directory find_cifar10() accepts.
Dataset read_cifar10(const std::string& dir, bool train);

}  // namespace resnet18_cifar10
