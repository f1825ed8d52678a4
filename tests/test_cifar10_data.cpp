#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "cifar10.h"
#include "config.h"
#include "data_pipeline.h"
#include "synthetic_data.h"

namespace {

using namespace resnet18_cifar10;
namespace fs = std::filesystem;

class Cifar10Test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("demon_cifar_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `records` records: label = labels[i], pixel byte (c, y, x) = (i + c*7 + y*3 + x) % 256.
  std::string write(const std::string& name, const std::vector<uint8_t>& labels,
                    int64_t drop_bytes = 0) {
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i < labels.size(); ++i) {
      bytes.push_back(labels[i]);
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x)
            bytes.push_back(static_cast<uint8_t>((i + c * 7 + y * 3 + x) % 256));
    }
    bytes.resize(bytes.size() - static_cast<size_t>(drop_bytes));
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  std::string error_of(const std::string& path, int64_t records) {
    try {
      read_cifar10_file(path, records);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  }

  fs::path dir_;
};

TEST_F(Cifar10Test, ReadsLabelsAndPlanes) {
  const std::vector<uint8_t> labels = {3, 0, 9, 5, 1};
  const auto data = read_cifar10_file(write("good.bin", labels), 5);
  ASSERT_EQ(data.size(), 5);
  EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{5, 3, 32, 32}));
  EXPECT_EQ(data.images.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(data.labels, torch::tensor({3, 0, 9, 5, 1}, torch::kLong)));
  // R plane first, then G, then B; rows of 32.
  for (int64_t i : {0, 4}) {
    for (int c : {0, 2}) {
      EXPECT_EQ(data.images[i][c][5][7].item<int>(), (i + c * 7 + 5 * 3 + 7) % 256);
    }
  }
}

TEST_F(Cifar10Test, BadFilesAreNamedWithTheProblem) {
  const std::string missing = (dir_ / "nope.bin").string();
  EXPECT_NE(error_of(missing, 5).find("nope.bin: missing"), std::string::npos);
  const auto truncated = write("truncated.bin", {1, 2, 3, 4, 5}, 100);
  const auto message = error_of(truncated, 5);
  EXPECT_NE(message.find("truncated.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  const auto short_file = write("short.bin", {1, 2, 3});
  EXPECT_NE(error_of(short_file, 5).find("wrong size: 3 records, expected 5"), std::string::npos)
      << error_of(short_file, 5);
  const auto bad_label = write("bad_label.bin", {1, 2, 3, 10, 4});
  EXPECT_NE(error_of(bad_label, 5).find("label 10 of record 3 is out of range"), std::string::npos)
      << error_of(bad_label, 5);
}

TEST_F(Cifar10Test, FindsTheReleaseDirectory) {
  EXPECT_EQ(find_cifar10(dir_.string()), "");
  const auto sub = dir_ / "cifar-10-batches-bin";
  fs::create_directories(sub);
  std::ofstream(sub / "data_batch_1.bin") << "x";
  std::ofstream(sub / "test_batch.bin") << "x";
  EXPECT_EQ(find_cifar10(dir_.string()), sub.string());
  // A release with a broken file is an error naming it, never partial data.
  try {
    read_cifar10(dir_.string(), false);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("test_batch.bin"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_cifar10((dir_ / "elsewhere").string(), true), std::runtime_error);
}

// An image whose pixel (c, y, x) holds a code of its position, to locate crops and flips.
torch::Tensor position_coded(int64_t n) {
  auto y = torch::arange(32, torch::kFloat).view({1, 1, 32, 1});
  auto x = torch::arange(32, torch::kFloat).view({1, 1, 1, 32});
  return (y * 100 + x).expand({n, 3, 32, 32}).contiguous();
}

TEST(AugmentTest, CropsAndFlipsArePerImageAndSeeded) {
  const auto images = position_coded(64);
  auto g1 = torch::make_generator<torch::CPUGeneratorImpl>(5);
  auto g2 = torch::make_generator<torch::CPUGeneratorImpl>(5);
  auto g3 = torch::make_generator<torch::CPUGeneratorImpl>(6);
  const auto a = augment(images, g1);
  EXPECT_EQ(a.sizes(), images.sizes());
  EXPECT_TRUE(torch::equal(a, augment(images, g2)));
  EXPECT_FALSE(torch::equal(a, augment(images, g3)));
  // Every output is a 32×32 window of the reflection-padded image, flipped or not.
  const auto padded = torch::reflection_pad2d(images, {4, 4, 4, 4});
  int flipped = 0, unflipped = 0;
  std::set<std::pair<int, int>> offsets;
  for (int64_t i = 0; i < 64; ++i) {
    bool found = false;
    for (int dy = 0; dy <= 8 && !found; ++dy) {
      for (int dx = 0; dx <= 8 && !found; ++dx) {
        const auto window = padded[i].slice(1, dy, dy + 32).slice(2, dx, dx + 32);
        if (torch::equal(a[i], window)) {
          found = true;
          ++unflipped;
          offsets.insert({dy, dx});
        } else if (torch::equal(a[i], window.flip({2}))) {
          found = true;
          ++flipped;
          offsets.insert({dy, dx});
        }
      }
    }
    EXPECT_TRUE(found) << "image " << i;
  }
  EXPECT_GT(flipped, 15);
  EXPECT_GT(unflipped, 15);
  EXPECT_GT(offsets.size(), 20u);  // 81 possible windows
}

TEST(AugmentTest, NormalizeUsesCifarStatistics) {
  auto images = torch::full({2, 3, 4, 4}, 255, torch::kUInt8);
  const auto out = normalize(images);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(out[0][c][0][0].item<float>(), (1.0f - kCifarMean[c]) / kCifarStd[c], 1e-5);
  }
}

TEST(PipelineTest, BatchesAreReproducibleShuffledAndConsistent) {
  // Labels equal to the image's own id, encoded in its first pixel.
  Dataset data;
  data.labels = torch::arange(100, torch::kLong);
  data.images = torch::zeros({100, 3, 32, 32}, torch::kUInt8);
  data.images.select(1, 0).select(1, 0).select(1, 0).copy_(data.labels.to(torch::kUInt8));
  DevicePipeline pipeline(data, torch::kCPU, 32, /*shuffle=*/true, /*augment=*/false, 7);
  EXPECT_EQ(pipeline.batches(), 3);  // the partial last batch is dropped
  const auto [images, labels] = pipeline.batch(0, 1);
  EXPECT_EQ(images.size(0), 32);
  // Each label matches the id carried by its image.
  const auto ids =
      (images.select(1, 0).select(1, 0).select(1, 0) * kCifarStd[0] + kCifarMean[0]) * 255.0;
  EXPECT_TRUE(torch::allclose(ids, labels.to(torch::kFloat), 0, 1e-3));
  EXPECT_TRUE(torch::equal(pipeline.batch(0, 1).second, labels));   // same epoch, same batch
  EXPECT_FALSE(torch::equal(pipeline.batch(1, 1).second, labels));  // another epoch, another order
  DevicePipeline again(data, torch::kCPU, 32, true, false, 7);
  EXPECT_TRUE(torch::equal(again.batch(0, 1).second, labels));  // seeded
  // Epoch 0 covers 96 distinct images.
  std::set<int64_t> seen;
  for (int64_t b = 0; b < 3; ++b) {
    const auto l = pipeline.batch(0, b).second;
    for (int64_t i = 0; i < l.size(0); ++i)
      seen.insert(l[i].item<int64_t>());
  }
  EXPECT_EQ(seen.size(), 96u);
  DevicePipeline ordered(data, torch::kCPU, 32, /*shuffle=*/false, false, 7);
  EXPECT_EQ(ordered.batches(), 4);  // evaluation keeps the partial batch
  EXPECT_EQ(ordered.batch(0, 3).second.size(0), 4);
  EXPECT_THROW(DevicePipeline(data, torch::kCPU, 200, true, false, 0), std::invalid_argument);
}

TEST(SyntheticDataTest, DeterministicLearnableShapes) {
  const auto a = make_synthetic_cifar10(500, 3, 0);
  const auto b = make_synthetic_cifar10(500, 3, 0);
  const auto test = make_synthetic_cifar10(500, 3, 1);
  EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{500, 3, 32, 32}));
  EXPECT_EQ(a.images.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_FALSE(torch::equal(a.images, test.images));
  EXPECT_EQ(torch::bincount(a.labels, {}, 10).min().item<int64_t>() > 20, true);
  // Class means differ from one another far more than within-class noise averages out.
  const auto means = torch::stack({a.images.index({a.labels.eq(0)}).to(torch::kFloat).mean(0),
                                   a.images.index({a.labels.eq(1)}).to(torch::kFloat).mean(0)});
  EXPECT_GT((means[0] - means[1]).abs().mean().item<float>(), 5.0f);
}

TEST(TrainConfigTest, JsonRoundTripAndErrors) {
  TrainConfig config;
  config.width = 0.5;
  config.lr_decay_epochs = {3, 6};
  config.demon = {{"lambda_peak", 0.2}};
  const auto back = TrainConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
  EXPECT_DOUBLE_EQ(back.demon_options(100).lambda_peak().value(), 0.2);
  EXPECT_EQ(back.demon_options(100).total_steps(), 100);
  auto error_of = [](const nlohmann::json& j) {
    try {
      TrainConfig::from_json(j);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of({{"widht", 1.0}}).find("unknown key \"widht\""), std::string::npos);
  EXPECT_NE(error_of({{"epochs", "ten"}}).find("\"epochs\""), std::string::npos);
  EXPECT_NE(error_of({{"amp", "bf16"}}).find("amp needs device"), std::string::npos);
  EXPECT_NE(error_of({{"demon", {{"lamda_peak", 1}}}}).find("lamda_peak"), std::string::npos);
  EXPECT_NE(error_of({{"optimizer", "lbfgs"}}).find("optimizer"), std::string::npos);
  // Found by fuzz_options_json: list elements are checked too, and an integer too large for
  // int64 (parsed as a double, or as an unsigned beyond int64) is refused, not converted.
  EXPECT_NE(error_of(nlohmann::json::parse(R"({"lr_decay_epochs": [3, 1e92]})"))
                .find("key \"lr_decay_epochs\" has the wrong type or is out of range"),
            std::string::npos);
  EXPECT_NE(
      error_of(nlohmann::json::parse(R"({"lr_decay_epochs": [3, "6"]})")).find("lr_decay_epochs"),
      std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::parse(R"({"epochs": 18446744073709551615})")).find("epochs"),
            std::string::npos);
}

TEST(TrainConfigTest, ShippedConfigsAreValid) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(DEMON_SOURCE_DIR) / "configs")) {
    const std::string path = entry.path().string();
    if (entry.path().filename() == "quickstart.json") {
      EXPECT_NO_THROW(demon::DemonOptions::load(path)) << path;  // DemonOptions alone
    } else {
      EXPECT_NO_THROW(TrainConfig::load(path)) << path;
    }
    ++checked;
  }
  EXPECT_GE(checked, 7);
  // The paper's AdamW setting: 250 epochs of 390 steps, λ span 85000, prune every 5000 steps.
  const auto adamw =
      TrainConfig::load(std::string(DEMON_SOURCE_DIR) + "/configs/resnet18_adamw.json");
  const auto options = adamw.demon_options(250 * 390);
  EXPECT_EQ(options.total_steps(), 97500);
  EXPECT_EQ(options.effective_span(), 85000);
  EXPECT_EQ(options.death_check(), demon::DeathCheck::kBoth);
  EXPECT_TRUE(
      TrainConfig::load(std::string(DEMON_SOURCE_DIR) + "/configs/resnet18_sgd_dense.json").dense);
}

}  // namespace
