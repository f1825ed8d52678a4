#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "demon/options.h"

namespace {

using demon::DemonOptions;
using nlohmann::json;

// The error message of DemonOptions::from_json(j), or "no error".
std::string parse_error(const json& j) {
  try {
    demon::DemonOptions::from_json(j);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

DemonOptions all_non_default() {
  return DemonOptions(1234)
      .schedule_span(1000)
      .schedule(demon::ScheduleKind::kCosineDecay)
      .pct_start(0.25)
      .div_factor(10.0)
      .final_div_factor(100.0)
      .regularizer(demon::Regularizer::kL2)
      .lambda_peak(0.125)
      .lambda_relative(1.5)
      .pressure(demon::Pressure::kTime)
      .element_flops(250.0)
      .noise(false)
      .noise_mode(demon::NoiseMode::kAll)
      .sigma_peak(1e-4)
      .seed(18446744073709551615ULL)
      .prune(false)
      .prune_every(250)
      .prune_start(100)
      .prune_at_end(false)
      .min_width(4)
      .epsilon(1e-3)
      .death_check(demon::DeathCheck::kBoth)
      .forward_check(demon::ForwardCheck::kError)
      .error_if_inactive(true);
}

TEST(OptionsTest, JsonRoundTripKeepsEveryField) {
  const DemonOptions original = all_non_default();
  const json written = original.to_json();
  const DemonOptions read = demon::DemonOptions::from_json(written);
  EXPECT_EQ(read.to_json(), written);
  EXPECT_EQ(read.total_steps(), 1234);
  EXPECT_EQ(read.schedule_span(), 1000);
  EXPECT_EQ(read.schedule(), demon::ScheduleKind::kCosineDecay);
  EXPECT_DOUBLE_EQ(read.pct_start(), 0.25);
  EXPECT_DOUBLE_EQ(read.div_factor(), 10.0);
  EXPECT_DOUBLE_EQ(read.final_div_factor(), 100.0);
  EXPECT_EQ(read.regularizer(), demon::Regularizer::kL2);
  EXPECT_DOUBLE_EQ(read.lambda_peak().value(), 0.125);
  EXPECT_DOUBLE_EQ(read.lambda_relative(), 1.5);
  EXPECT_FALSE(read.noise());
  EXPECT_EQ(read.noise_mode(), demon::NoiseMode::kAll);
  EXPECT_DOUBLE_EQ(read.sigma_peak(), 1e-4);
  EXPECT_EQ(read.seed(), 18446744073709551615ULL);
  EXPECT_FALSE(read.prune());
  EXPECT_EQ(read.prune_every(), 250);
  EXPECT_EQ(read.prune_start(), 100);
  EXPECT_FALSE(read.prune_at_end());
  EXPECT_EQ(read.min_width(), 4);
  EXPECT_DOUBLE_EQ(read.epsilon(), 1e-3);
  EXPECT_EQ(read.death_check(), demon::DeathCheck::kBoth);
  EXPECT_EQ(written.at("death_check"), "both");
  // Enums are written by name.
  EXPECT_EQ(written.at("regularizer"), "l2");
  EXPECT_EQ(written.at("pressure"), "time");
  EXPECT_DOUBLE_EQ(read.element_flops(), 250.0);
  EXPECT_EQ(written.at("noise_mode"), "all");
  EXPECT_EQ(written.at("schedule"), "cosine_decay");
}

TEST(OptionsTest, AdlHooksWorkWithNlohmann) {
  json j = all_non_default();
  auto back = j.get<DemonOptions>();
  EXPECT_EQ(back.to_json(), j);
}

TEST(OptionsTest, MissingKeysKeepDefaults) {
  const DemonOptions read = demon::DemonOptions::from_json(json{{"lambda_peak", 0.3}});
  const DemonOptions defaults;
  EXPECT_DOUBLE_EQ(read.lambda_peak().value(), 0.3);
  EXPECT_EQ(read.regularizer(), defaults.regularizer());
  EXPECT_DOUBLE_EQ(read.sigma_peak(), defaults.sigma_peak());
  EXPECT_EQ(read.total_steps(), 0);  // may be set later; validate() insists on it
  EXPECT_THROW(read.validate(), std::invalid_argument);
}

TEST(OptionsTest, UnknownKeyIsNamedWithASuggestion) {
  const std::string message = parse_error(json{{"lamda_peak", 0.1}});
  EXPECT_NE(message.find("unknown key \"lamda_peak\""), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean \"lambda_peak\""), std::string::npos) << message;
  EXPECT_NE(parse_error(json{{"zzz", 1}}).find("unknown key \"zzz\""), std::string::npos);
}

TEST(OptionsTest, WrongTypesAreNamedByKey) {
  struct Case {
    json input;
    std::string key, expected;
  };
  const Case cases[] = {
      {{{"total_steps", "100"}}, "total_steps", "expected an integer"},
      {{{"total_steps", 1.5}}, "total_steps", "expected an integer"},
      {{{"lambda_peak", "big"}}, "lambda_peak", "expected a number"},
      {{{"noise", 1}}, "noise", "expected true or false"},
      {{{"seed", -1}}, "seed", "non-negative integer"},
      {{{"regularizer", 2}}, "regularizer", "expected a string"},
      {{{"regularizer", "l1"}}, "regularizer", "lasso"},
      {{{"schedule", "cosine"}}, "schedule", "one_cycle"},
      {{{"noise_mode", "live"}}, "noise_mode", "live_only"},
      {{{"pressure", "fast"}}, "pressure", "uniform, flops, time"},
      {{{"death_check", "eval_mode"}}, "death_check", "train, eval, both"},
      {{{"prune_every", 1.5}}, "prune_every", "expected an integer"},
  };
  for (const auto& c : cases) {
    const std::string message = parse_error(c.input);
    EXPECT_NE(message.find("\"" + c.key + "\""), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
  EXPECT_NE(parse_error(json::array({1, 2})).find("expected a JSON object"), std::string::npos);
}

TEST(OptionsTest, InvalidValuesAreRejectedWhenRead) {
  EXPECT_NE(parse_error(json{{"lambda_peak", -0.1}}).find("lambda_peak"), std::string::npos);
  EXPECT_NE(parse_error(json{{"sigma_peak", -1}}).find("sigma_peak"), std::string::npos);
  EXPECT_NE(parse_error(json{{"element_flops", 0}}).find("element_flops"), std::string::npos);
  EXPECT_NE(parse_error(json{{"pct_start", 1.5}}).find("pct_start"), std::string::npos);
  EXPECT_NE(parse_error(json{{"schedule_span", -5}}).find("schedule_span"), std::string::npos);
  EXPECT_NE(parse_error(json{{"total_steps", -5}}).find("total_steps"), std::string::npos);
  EXPECT_NE(parse_error(json{{"prune_every", -1}}).find("prune_every"), std::string::npos);
  EXPECT_NE(parse_error(json{{"min_width", 0}}).find("min_width"), std::string::npos);
  EXPECT_NE(parse_error(json{{"epsilon", -1e-3}}).find("epsilon"), std::string::npos);
  EXPECT_NE(parse_error(json{{"controller_max_growth", 0.5}}).find("controller_max_growth"),
            std::string::npos);
  EXPECT_NE(parse_error(json{{"controller_max_lambda", 0.5}}).find("controller_max_lambda"),
            std::string::npos);
}

TEST(OptionsTest, ElementFlopsMustBeFiniteAndPositive) {
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()}) {
    try {
      DemonOptions(100).pressure(demon::Pressure::kTime).element_flops(bad).validate();
      ADD_FAILURE() << "element_flops " << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("element_flops"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(
      DemonOptions(100).pressure(demon::Pressure::kTime).element_flops(1e-3).validate());
}

TEST(OptionsTest, EffectiveSpanDefaultsToReferenceRatio) {
  EXPECT_EQ(DemonOptions(97656).effective_span(), 84961);  // round(0.87 * 97656)
  EXPECT_EQ(DemonOptions(97656).schedule_span(85000).effective_span(), 85000);
  EXPECT_EQ(DemonOptions(1).effective_span(), 1);
  const auto options = DemonOptions(1000).lambda_peak(0.5).sigma_peak(2e-5);
  EXPECT_DOUBLE_EQ(options.lambda_schedule()(0), 0.5 / 25);
  EXPECT_DOUBLE_EQ(options.sigma_schedule()(0), 2e-5 / 25);
  EXPECT_DOUBLE_EQ(options.lambda_schedule()(261), 0.5);  // int(0.3 * 870) = 261
}

TEST(OptionsTest, RunLengthFromEpochsAndStepsPerEpoch) {
  const auto options = DemonOptions().epochs(10).steps_per_epoch(391);
  EXPECT_NO_THROW(options.validate());
  EXPECT_EQ(options.run_steps(), 3910);
  EXPECT_EQ(options.effective_span(), 3402);  // round(0.87 * 3910)
  EXPECT_EQ(DemonOptions(3910).epochs(10).steps_per_epoch(391).run_steps(), 3910);
  auto error_of = [](const DemonOptions& o) {
    try {
      o.validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(DemonOptions()).find("run's length is missing"), std::string::npos);
  EXPECT_NE(error_of(DemonOptions().epochs(3)).find("go together"), std::string::npos);
  EXPECT_NE(error_of(DemonOptions(100).epochs(3).steps_per_epoch(10)).find("disagrees"),
            std::string::npos);
  // A data set's size: rounded up, or down when the last partial batch is dropped.
  EXPECT_EQ(demon::batches_per_epoch(50000, 128), 391);
  EXPECT_EQ(demon::batches_per_epoch(50000, 128, /*drop_last=*/true), 390);
  EXPECT_THROW(demon::batches_per_epoch(0, 128), std::invalid_argument);
  // From JSON, as a config file would give it.
  const auto read = demon::DemonOptions::from_json(json{{"epochs", 10}, {"steps_per_epoch", 391}});
  EXPECT_EQ(read.run_steps(), 3910);
}

TEST(OptionsTest, PruneEveryZeroIsATwentiethOfTheRunAndAtLeast100) {
  EXPECT_EQ(DemonOptions(100000).prune_every(), 0);
  EXPECT_EQ(DemonOptions(100000).effective_prune_every(), 5000);
  EXPECT_EQ(DemonOptions(3910).effective_prune_every(), 196);
  EXPECT_EQ(DemonOptions(1170).effective_prune_every(), 100);
  EXPECT_EQ(DemonOptions(100000).prune_every(250).effective_prune_every(), 250);
  EXPECT_EQ(demon::DemonOptions::from_json(json{{"epochs", 10}, {"steps_per_epoch", 391}})
                .effective_prune_every(),
            196);
}

TEST(OptionsTest, LambdaPeakIsAutoUntilSet) {
  EXPECT_FALSE(DemonOptions(100).lambda_peak().has_value());
  EXPECT_EQ(DemonOptions(100).to_json().at("lambda_peak"), "auto");
  EXPECT_FALSE(demon::DemonOptions::from_json(json{{"lambda_peak", "auto"}}).lambda_peak());
  EXPECT_FALSE(demon::DemonOptions::from_json(json{{"lambda_peak", nullptr}}).lambda_peak());
  EXPECT_EQ(demon::DemonOptions::from_json(json{{"lambda_peak", 0.02}}).lambda_peak(), 0.02);
  EXPECT_NE(parse_error(json{{"lambda_peak", "lots"}}).find("a number or \"auto\""),
            std::string::npos);
  // The controller's growth limit is auto in the same way.
  EXPECT_FALSE(DemonOptions(100).controller_max_growth().has_value());
  EXPECT_EQ(DemonOptions(100).to_json().at("controller_max_growth"), "auto");
  EXPECT_EQ(
      demon::DemonOptions::from_json(json{{"controller_max_growth", 8}}).controller_max_growth(),
      8.0);
  // An automatic λ's schedule runs in units of the measured gradient scale: its peak is
  // lambda_relative.
  EXPECT_DOUBLE_EQ(DemonOptions(1000).lambda_relative(3.0).lambda_schedule()(261), 3.0);
  EXPECT_EQ(DemonOptions(1000).lambda_rise_steps(), 261);  // int(0.3 * 870)
  EXPECT_EQ(demon::DemonOptions::from_json(json{{"forward_check", "off"}}).forward_check(),
            demon::ForwardCheck::kOff);
  EXPECT_NE(parse_error(json{{"forward_check", "maybe"}}).find("pin, error, off"),
            std::string::npos);
}

TEST(OptionsTest, SaveAndLoadFiles) {
  const auto dir = std::filesystem::temp_directory_path() / "demon_options_test";
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "nested" / "options.json").string();
  all_non_default().save(path);
  EXPECT_EQ(DemonOptions::load(path).to_json(), all_non_default().to_json());
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "nested"),
                          std::filesystem::directory_iterator()),
            1);

  try {
    DemonOptions::load((dir / "missing.json").string());
    ADD_FAILURE() << "no error for a missing file";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
  }
  const std::string broken = (dir / "broken.json").string();
  std::ofstream(broken) << "{\"lambda_peak\": 0.1,";
  try {
    DemonOptions::load(broken);
    ADD_FAILURE() << "no error for broken JSON";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

// docs/options.md documents every option in table rows
//   | `key` | type | `default as JSON` | meaning | `refused value`: words of its error |
// The page cannot drift from the library: every key is there once with the library's default,
// and each refused value is refused with those words.
struct DocumentedOption {
  std::string key;
  json default_value;
  json refused_value;
  std::string error_words;
};

// The cells of a Markdown table row, split at the pipes that are not escaped.
std::vector<std::string> table_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (line[i] == '|') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  for (auto& c : cells) {
    c.erase(0, c.find_first_not_of(' '));
    c.erase(c.find_last_not_of(' ') + 1);
  }
  return cells;
}

// The text between the first pair of backticks of `cell`, or "" without one.
std::string backticked(const std::string& cell, size_t* end = nullptr) {
  const size_t open = cell.find('`');
  const size_t close = open == std::string::npos ? open : cell.find('`', open + 1);
  if (close == std::string::npos) {
    return "";
  }
  if (end != nullptr) {
    *end = close + 1;
  }
  return cell.substr(open + 1, close - open - 1);
}

std::vector<DocumentedOption> documented_options() {
  std::ifstream page(std::string(DEMON_SOURCE_DIR) + "/docs/options.md");
  EXPECT_TRUE(page.good()) << "docs/options.md is missing";
  std::vector<DocumentedOption> options;
  std::string line;
  while (std::getline(page, line)) {
    if (line.rfind("| `", 0) != 0) {
      continue;
    }
    const auto cells = table_cells(line);
    EXPECT_EQ(cells.size(), 5u) << "docs/options.md: a row without 5 cells: " << line;
    if (cells.size() != 5) {
      continue;
    }
    DocumentedOption option;
    option.key = backticked(cells[0]);
    option.default_value = json::parse(backticked(cells[2]), nullptr, false);
    size_t end = 0;
    option.refused_value = json::parse(backticked(cells[4], &end), nullptr, false);
    const std::string rest = cells[4].substr(end);
    EXPECT_EQ(rest.rfind(": ", 0), 0u)
        << "docs/options.md: " << option.key << "'s refused cell is not `value`: words";
    option.error_words = rest.size() > 2 ? rest.substr(2) : "";
    EXPECT_FALSE(option.default_value.is_discarded())
        << "docs/options.md: " << option.key << "'s default is not JSON: " << cells[2];
    EXPECT_FALSE(option.refused_value.is_discarded())
        << "docs/options.md: " << option.key << "'s refused value is not JSON: " << cells[4];
    options.push_back(option);
  }
  return options;
}

TEST(OptionsDocTest, EveryOptionIsDocumentedOnceWithItsDefault) {
  const json defaults = DemonOptions();
  const auto documented = documented_options();
  std::set<std::string> seen;
  for (const auto& option : documented) {
    EXPECT_TRUE(seen.insert(option.key).second)
        << "docs/options.md documents " << option.key << " twice";
    ASSERT_TRUE(defaults.contains(option.key))
        << "docs/options.md documents " << option.key << ", which is not an option";
    const json& actual = defaults.at(option.key);
    if (actual.is_number() && option.default_value.is_number()) {
      EXPECT_DOUBLE_EQ(option.default_value.get<double>(), actual.get<double>())
          << "docs/options.md: the default of " << option.key;
    } else {
      EXPECT_EQ(option.default_value, actual) << "docs/options.md: the default of " << option.key;
    }
  }
  for (const auto& [key, value] : defaults.items()) {
    EXPECT_EQ(seen.count(key), 1u)
        << "docs/options.md does not document " << key << " (" << value.dump() << ")";
  }
}

TEST(OptionsDocTest, EveryRefusedValueIsRefusedWithTheDocumentedWords) {
  for (const auto& option : documented_options()) {
    json config = {{"total_steps", 1000}};
    config[option.key] = option.refused_value;
    const std::string error = parse_error(config);
    EXPECT_FALSE(option.error_words.empty()) << option.key;
    EXPECT_NE(error.find(option.error_words), std::string::npos)
        << "docs/options.md says " << option.key << " = " << option.refused_value.dump()
        << " is refused with \"" << option.error_words << "\"; the library says: " << error;
    EXPECT_NE(error.find(option.key), std::string::npos)
        << "the error for " << option.key << " does not name it: " << error;
  }
}

namespace {

// The names DemonOptions' JSON and batches_per_epoch() had before: deprecated, and still the
// same functions.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
TEST(OptionsTest, DeprecatedNamesStillWork) {
  const DemonOptions options = DemonOptions(100).lambda_peak(0.02).target(0.5);
  EXPECT_EQ(demon::to_json(options), options.to_json());
  EXPECT_EQ(demon::options_from_json(options.to_json()).to_json(), options.to_json());
  EXPECT_EQ(demon::steps_per_epoch(50000, 128, /*drop_last=*/true),
            demon::batches_per_epoch(50000, 128, /*drop_last=*/true));
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// The ADL hooks: `json j = options` and `j.get<DemonOptions>()` use to_json() and from_json().
TEST(OptionsTest, NlohmannConversionsMatchTheMembers) {
  const DemonOptions options = DemonOptions(100).lambda_peak(0.02);
  const json converted = options;
  EXPECT_EQ(converted, options.to_json());
  EXPECT_EQ(converted.get<DemonOptions>().to_json(), options.to_json());
}

}  // namespace
