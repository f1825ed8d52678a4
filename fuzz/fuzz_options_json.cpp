// DemonOptions and the example's TrainConfig from arbitrary JSON text. Promises (options.h,
// config.h): a bad key, type or value is a std::invalid_argument, never another exception or a
// crash; accepted options survive a round trip through DemonOptions::to_json unchanged.

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "config.h"
#include "demon/options.h"
#include "fuzz_support.h"

namespace {

using nlohmann::json;

std::vector<std::string> seeds() {
  const auto options = demon::DemonOptions(1000)
                           .lambda_peak(5e-3)
                           .prune_every(50)
                           .regularizer(demon::Regularizer::kL2)
                           .pressure(demon::Pressure::kTime)
                           .element_flops(500.0)
                           .group_min_width({{"layer1", 4}});
  resnet18_cifar10::TrainConfig config;
  config.demon = options.to_json();
  return {demon::DemonOptions().to_json().dump(),
          options.to_json().dump(2),
          config.to_json().dump(),
          R"({"epochs": 2, "width": 0.125, "demon": {"target": 0.3}})",
          R"({"total_steps": -1, "schedule": "cosine"})",
          R"({"demon": {"lambda_peak": "auto", "epochs": 3}, "baseline": "slimming"})",
          R"({"total_steps": 100, "pressure": "flops", "element_flops": 0})"};
}

template <typename Function>
void expect_clear_error(const char* what, Function&& function) {
  try {
    function();
  } catch (const std::invalid_argument&) {
  } catch (const std::exception& error) {
    demon::fuzz::broken(std::string(what) +
                        " threw something other than std::invalid_argument: " + error.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  demon::fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parsed = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return 0;
  }
  expect_clear_error("DemonOptions", [&] {
    const auto options = demon::DemonOptions::from_json(parsed);
    const json written = options.to_json();
    const json again = demon::DemonOptions::from_json(written).to_json();
    if (written != again) {
      demon::fuzz::broken("DemonOptions round trip changed " + written.dump() + " into " +
                          again.dump());
    }
    options.validate();
  });
  expect_clear_error("TrainConfig", [&] {
    const auto config = resnet18_cifar10::TrainConfig::from_json(parsed);
    config.validate();
    config.demon_options(/*total_steps=*/100, /*steps_per_epoch=*/10).validate();
  });
  return 0;
}
