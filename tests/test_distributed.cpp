// Data-parallel pieces that one process can check: the factories' and the pruner's answers to
// bad input, and a one-rank group that must change nothing. Several ranks: distributed.sh.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>
#include <filesystem>
#include <string>

#include "demon/demon.h"
#include "demon/distributed.h"
#include "support.h"
#include "training_support.h"

namespace demon::testing {
namespace {

namespace fs = std::filesystem;

class DistributedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_gloo())
      GTEST_SKIP() << "demon was built without Gloo";
    dir_ = fs::temp_directory_path() / ("demon_distributed_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty())
      fs::remove_all(dir_);
  }
  c10::intrusive_ptr<ProcessGroup> one_rank(const std::string& name) {
    return make_gloo_group(make_file_store((dir_ / name).string(), 1), 0, 1,
                           ProcessGroupOptions().hostname("127.0.0.1"));
  }
  fs::path dir_;
};

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(DistributedTest, BadArgumentsAreNamed) {
  auto store = make_file_store((dir_ / "store").string(), 2);
  EXPECT_NE(error_of([&] { make_gloo_group(store, 2, 2); }).find("rank must be in [0, 2), got 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              make_gloo_group(c10::intrusive_ptr<c10d::Store>(), 0, 1);
            }).find("the store is null"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_file_store("", 1); }).find("the path is empty"), std::string::npos);
  EXPECT_NE(error_of([&] {
              make_gloo_group(store, 0, 2, ProcessGroupOptions().threads(0));
            }).find("threads must be >= 1, got 0"),
            std::string::npos);

  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::AdamW>(model->parameters());
  DemonPruner pruner(model.ptr(), optimizer, DemonOptions(10));
  EXPECT_NE(error_of([&] {
              pruner.set_process_group(c10::intrusive_ptr<ProcessGroup>());
            }).find("the group is null"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              pruner.set_process_group(one_rank("bucket"), DataParallelOptions().bucket_bytes(0));
            }).find("bucket_bytes must be >= 1, got 0"),
            std::string::npos);
  EXPECT_EQ(pruner.world_size(), 1);
  EXPECT_EQ(pruner.rank(), 0);
}

// Averaging over one rank, through buckets much smaller than the model (one gradient each, and
// the flatten/copy-back of every bucket), gives back every gradient exactly.
TEST_F(DistributedTest, OneRankGradientsComeBackExactly) {
  auto model = small_resnet();
  auto [images, labels] = synthetic_batch(0);
  torch::cross_entropy_loss(model->forward(images), labels).backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters())
    grads.push_back(p.grad().clone());
  allreduce_gradients(model->parameters(), *one_rank("grads"), /*bucket_bytes=*/256);
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(torch::equal(params[i].grad(), grads[i])) << "gradient " << i;
}

// A pruner on a one-rank group trains, prunes and ends bit-identical to one without a group.
TEST_F(DistributedTest, OneRankGroupChangesNothing) {
  const auto options = DemonOptions(60).lambda_peak(0.1).sigma_peak(1e-4).prune_every(15).seed(3);
  auto run = [&](bool with_group) {
    auto model = small_resnet(/*seed=*/7);
    auto optimizer = std::make_shared<torch::optim::AdamW>(
        model->parameters(), torch::optim::AdamWOptions(2e-2).weight_decay(5e-4));
    DemonPruner pruner(model.ptr(), optimizer, options);
    if (with_group)
      pruner.set_process_group(one_rank("train"), DataParallelOptions().bucket_bytes(4096));
    train(pruner, model, 0, 60);
    return std::make_pair(snapshot(*model), pruner.prune_events());
  };
  const auto [plain, plain_events] = run(false);
  const auto [grouped, grouped_events] = run(true);
  EXPECT_EQ(plain_events, grouped_events);
  expect_bitwise_equal(plain, grouped, "one-rank group against none");
}

// NCCL, where a GPU is at hand: one rank on the current GPU, the same promise as Gloo's.
TEST(DistributedNcclTest, OneRankOnCudaChangesNothing) {
  DEMON_REQUIRE_CUDA();
  if (!has_nccl())
    GTEST_SKIP() << "demon was built without NCCL";
  const auto dir = fs::temp_directory_path() / ("demon_nccl_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto group = make_nccl_group(make_file_store((dir / "store").string(), 1), 0, 1);
  auto model = small_resnet();
  model->to(torch::kCUDA);
  auto [images, labels] = synthetic_batch(0);
  torch::cross_entropy_loss(model->forward(images.to(torch::kCUDA)), labels.to(torch::kCUDA))
      .backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters())
    grads.push_back(p.grad().clone());
  allreduce_gradients(model->parameters(), *group, /*bucket_bytes=*/4096);
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(torch::equal(params[i].grad(), grads[i])) << "gradient " << i;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace demon::testing
