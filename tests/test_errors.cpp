// One exception family: everything demon's own checks throw is a demon::Error, is also the
// standard exception of its kind, and says which API refused what.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "demon/demon.h"
#include "demon/errors.h"

namespace {

// Runs `call`, which must throw; returns the message after checking that the exception is caught
// as demon::Error, as `StdKind` and as std::exception, and is exactly one of those.
template <typename DemonKind, typename StdKind>
std::string thrown_message(const std::function<void()>& call) {
  try {
    call();
  } catch (const DemonKind& error) {
    const demon::Error& as_demon = error;
    const StdKind& as_std = error;
    const std::exception& as_exception = error;
    EXPECT_STREQ(as_demon.what(), as_std.what());
    EXPECT_STREQ(as_demon.what(), as_exception.what());
    return as_demon.what();
  } catch (const std::exception& other) {
    ADD_FAILURE() << "threw another type: " << other.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

TEST(ErrorTest, BadOptionsAreValueErrorsThatNameTheOptionAndValue) {
  const std::string message = thrown_message<demon::ValueError, std::invalid_argument>(
      [] { demon::DemonOptions(100).lambda_peak(-1.0).validate(); });
  EXPECT_TRUE(starts_with(message, "demon::DemonOptions: ")) << message;
  EXPECT_NE(message.find("lambda_peak"), std::string::npos) << message;
  EXPECT_NE(message.find("-1"), std::string::npos) << message;
}

TEST(ErrorTest, AnUnknownNameIsAValueErrorThatListsTheKnownOnes) {
  const std::string message = thrown_message<demon::ValueError, std::invalid_argument>(
      [] { demon::regularizer_from_string("lass0"); });
  EXPECT_TRUE(starts_with(message, "demon::regularizer_from_string: ")) << message;
  EXPECT_NE(message.find("\"lass0\""), std::string::npos) << message;
  EXPECT_NE(message.find("lasso"), std::string::npos) << message;
}

TEST(ErrorTest, AnIndexOutOfRangeIsAnIndexError) {
  demon::ChannelSelection selection(4);
  const std::string message = thrown_message<demon::IndexError, std::out_of_range>([&] {
    selection->select({0, 7}, {0, 1});
  });
  EXPECT_TRUE(starts_with(message, "demon::ChannelSelection::select: ")) << message;
  EXPECT_NE(message.find("7"), std::string::npos) << message;
  EXPECT_EQ(selection->forward(torch::ones({1, 4})).size(1), 4) << "nothing changed";
}

TEST(ErrorTest, AWrongShapeAtAModuleIsAValueErrorWithTheShape) {
  demon::ChannelSelection selection(4);
  const std::string message = thrown_message<demon::ValueError, std::invalid_argument>([&] {
    selection->forward(torch::ones({2, 3, 5}));
  });
  EXPECT_TRUE(starts_with(message, "demon::ChannelSelection: ")) << message;
  EXPECT_NE(message.find("[2, 3, 5]"), std::string::npos) << message;
}

TEST(ErrorTest, ACallOutOfOrderIsAStateError) {
  auto model =
      torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::ReLU(), torch::nn::Linear(8, 2));
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1));
  demon::DemonPruner pruner(model.ptr(), optimizer, demon::DemonOptions(10));
  const std::string message = thrown_message<demon::StateError, std::logic_error>([&] {
    pruner.check_death({torch::ones({2, 4})},
                       [&](const torch::Tensor& x) { return model->forward(x); });
  });
  EXPECT_TRUE(starts_with(message, "demon::DemonPruner::check_death: ")) << message;
  EXPECT_NE(message.find("backward()"), std::string::npos) << message;
}

TEST(ErrorTest, AFileThatCannotBeReadIsARuntimeErrorNamingThePath) {
  const std::string message = thrown_message<demon::RuntimeError, std::runtime_error>(
      [] { demon::load_safetensors("/nonexistent/demon/weights.safetensors"); });
  EXPECT_TRUE(starts_with(message, "demon::load_safetensors(")) << message;
  EXPECT_NE(message.find("/nonexistent/demon/weights.safetensors"), std::string::npos) << message;
}

TEST(ErrorTest, DemonErrorsCanBeToldApartFromTorchErrors) {
  // The point of a family: a training loop can catch demon's refusals without also swallowing
  // LibTorch's own (a shape mismatch inside the user's model is c10::Error, not demon::Error).
  int demon_errors = 0, other_errors = 0;
  const std::function<void()> calls[] = {
      [] { demon::DemonOptions(0).validate(); },
      [] {
        torch::ones({2, 3}).matmul(torch::ones({2, 3}));
      },
  };
  for (const auto& call : calls) {
    try {
      call();
    } catch (const demon::Error&) {
      ++demon_errors;
    } catch (const std::exception&) {
      ++other_errors;
    }
  }
  EXPECT_EQ(demon_errors, 1);
  EXPECT_EQ(other_errors, 1);
}

}  // namespace
