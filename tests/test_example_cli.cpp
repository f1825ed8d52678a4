// The example program through its real command line: files written, pruning, --resume,
// --eval-only, demon_plot, errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class ExampleCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir() = fs::temp_directory_path() / ("demon_cli_test_" + std::to_string(::getpid()));
    fs::remove_all(dir());
    fs::create_directories(dir());
    // 3 epochs of 16 steps on synthetic data, width 1/8: a prune event every 16 steps.
    std::ofstream(dir() / "tiny.json")
        << json{{"width", 0.125},
                {"epochs", 3},
                {"batch_size", 64},
                {"synthetic_train", 1024},
                {"synthetic_test", 256},
                {"lr", 0.03},
                {"lr_schedule", "constant"},
                {"log_every", 8},
                {"threads", 1},  // ctest runs other tests beside this one
                {"death_check_batches", 1},
                {"death_check_batch_size", 128},
                {"demon", {{"lambda_peak", 0.5}, {"prune_every", 16}, {"death_check", "both"}}}};
    // The uninterrupted run every test below refers to.
    full_rc() = run("--config " + (dir() / "tiny.json").string() + " --out " + out("full"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir()); }

  static fs::path& dir() {
    static fs::path path;
    return path;
  }
  static int& full_rc() {
    static int rc = -1;
    return rc;
  }
  static std::string out(const std::string& name) { return (dir() / name).string(); }
  static int run(const std::string& args, const std::string& binary = DEMON_EXAMPLE_BINARY) {
    const std::string command = binary + " " + args + " > " + out("last.log") + " 2>&1";
    return std::system(command.c_str());
  }
  static std::string log() {
    std::ifstream in(out("last.log"));
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static std::vector<json> lines(const std::string& path) {
    std::vector<json> result;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty())
        result.push_back(json::parse(line));
    }
    return result;
  }
  static json read(const std::string& path) { return json::parse(std::ifstream(path)); }
};

TEST_F(ExampleCliTest, HelpDocumentsTheOptions) {
  ASSERT_EQ(run("--help"), 0);
  for (const char* option :
       {"--config",        "--data-dir",   "--out",         "--epochs",        "--device",
        "--seed",          "--optimizer",  "--lr",          "--lambda",        "--pressure",
        "--element-flops", "--sigma",      "--prune-every", "--schedule-span", "--pct-start",
        "--prune-start",   "--batch-size", "--width",       "--resume",        "--eval-only",
        "--dense"}) {
    EXPECT_NE(log().find(option), std::string::npos) << option;
  }
}

TEST_F(ExampleCliTest, SyntheticRunWritesEverythingAndPrunes) {
  ASSERT_EQ(full_rc(), 0);
  for (const char* file : {"config.json", "metrics.jsonl", "prune_reports.jsonl", "checkpoint.pt",
                           "model_final.pt", "summary.json"}) {
    EXPECT_TRUE(fs::exists(out("full") + "/" + file)) << file;
  }
  const auto metrics = lines(out("full") + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 3u);
  for (const char* key : {"epoch", "step", "train_loss", "train_accuracy", "test_accuracy",
                          "lambda", "sigma", "live_units", "neural_sparsity", "param_sparsity",
                          "flops_ratio", "epoch_seconds", "images_per_second"}) {
    EXPECT_TRUE(metrics.back().contains(key)) << key;
  }
  EXPECT_EQ(metrics.back().at("step"), 48);
  const auto summary = read(out("full") + "/summary.json");
  for (const char* key :
       {"test_accuracy", "best_test_accuracy", "neural_sparsity", "param_sparsity", "flops_ratio",
        "train_seconds", "images_per_second", "prune_events"}) {
    EXPECT_TRUE(summary.contains(key)) << key;
  }
  EXPECT_EQ(summary.at("prune_events"), 3);
  EXPECT_GT(summary.at("neural_sparsity").get<double>(), 0.0);
  EXPECT_GT(summary.at("param_sparsity").get<double>(), 0.0);
  EXPECT_LT(summary.at("flops_ratio").get<double>(), 1.0);
  const auto reports = lines(out("full") + "/prune_reports.jsonl");
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_GT(reports.back().at("units_removed").get<int>(), 0);
  // The effective config is the file's.
  EXPECT_EQ(read(out("full") + "/config.json").at("width"), 0.125);
}

TEST_F(ExampleCliTest, ResumeAfterAnInterruptionMatchesTheFullRun) {
  ASSERT_EQ(full_rc(), 0);
  const std::string config = "--config " + (dir() / "tiny.json").string();
  ASSERT_EQ(run(config + " --out " + out("parts") + " --stop-after 1"), 0) << log();
  EXPECT_FALSE(fs::exists(out("parts") + "/summary.json"));
  ASSERT_EQ(lines(out("parts") + "/metrics.jsonl").size(), 1u);
  ASSERT_EQ(run(config + " --out " + out("parts") + " --resume"), 0) << log();
  EXPECT_NE(log().find("resumed from"), std::string::npos);
  const auto full = lines(out("full") + "/metrics.jsonl");
  const auto parts = lines(out("parts") + "/metrics.jsonl");
  ASSERT_EQ(parts.size(), full.size());
  for (size_t e = 0; e < full.size(); ++e) {
    for (const char* key : {"train_loss", "train_accuracy", "test_accuracy", "neural_sparsity",
                            "param_sparsity", "flops_ratio", "live_units"}) {
      EXPECT_EQ(parts[e].at(key), full[e].at(key)) << "epoch " << e << " " << key;
    }
  }
  EXPECT_EQ(lines(out("parts") + "/prune_reports.jsonl").size(), 3u);
  // Resuming with another configuration is refused.
  EXPECT_NE(run(config + " --out " + out("parts") + " --resume --lr 0.01 --epochs 4"), 0);
}

TEST_F(ExampleCliTest, EvalOnlyOnThePrunedCheckpoint) {
  ASSERT_EQ(full_rc(), 0);
  ASSERT_EQ(run("--config " + (dir() / "tiny.json").string() + " --eval-only " + out("full") +
                "/model_final.pt --out " + out("eval")),
            0)
      << log();
  const auto eval = read(out("eval") + "/eval.json");
  const auto summary = read(out("full") + "/summary.json");
  EXPECT_DOUBLE_EQ(eval.at("test_accuracy").get<double>(),
                   summary.at("test_accuracy").get<double>());
  EXPECT_EQ(eval.at("parameters"), summary.at("parameters"));
  EXPECT_LT(eval.at("flops_ratio").get<double>(), 1.0);
}

TEST_F(ExampleCliTest, DenseBaselineInTheSameHarness) {
  ASSERT_EQ(run("--config " + (dir() / "tiny.json").string() + " --dense --epochs 1 --out " +
                out("dense")),
            0)
      << log();
  const auto summary = read(out("dense") + "/summary.json");
  EXPECT_EQ(summary.at("dense"), true);
  EXPECT_EQ(summary.at("prune_events"), 0);
  EXPECT_DOUBLE_EQ(summary.at("param_sparsity").get<double>(), 0.0);
  EXPECT_FALSE(fs::exists(out("dense") + "/prune_reports.jsonl"));
}

TEST_F(ExampleCliTest, PlotTurnsMetricsIntoAPage) {
  ASSERT_EQ(full_rc(), 0);
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  ASSERT_EQ(run(out("full") + "/metrics.jsonl --out " + out("report.html"), DEMON_PLOT_BINARY), 0)
      << log();
  const std::string page = read(out("report.html"));
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("layer1_0.conv1"), std::string::npos);
  EXPECT_NE(page.find("neural sparsity"), std::string::npos);
  EXPECT_NE(page.find("by training time"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos) << "the page must open without scripts";
  // The summary's accuracy, in % with 2 decimals.
  const auto summary = nlohmann::json::parse(std::ifstream(out("full") + "/summary.json"));
  char accuracy[32];
  std::snprintf(accuracy, sizeof(accuracy), "<td>%.2f</td>",
                summary.at("test_accuracy").get<double>() * 100);
  EXPECT_NE(page.find(accuracy), std::string::npos) << accuracy;

  // Two runs on the same charts, named (the dense run is the DenseBaseline test's).
  ASSERT_TRUE(fs::exists(out("dense") + "/metrics.jsonl")) << "run the whole ExampleCliTest suite";
  ASSERT_EQ(
      run(out("full") + " " + out("dense") + " --names DemP,dense --out " + out("overlay.html"),
          DEMON_PLOT_BINARY),
      0)
      << log();
  const std::string overlay = read(out("overlay.html"));
  EXPECT_NE(overlay.find(">DemP"), std::string::npos);
  EXPECT_NE(overlay.find(">dense"), std::string::npos);
  EXPECT_NE(overlay.find("Layer widths of dense"), std::string::npos);
  EXPECT_NE(run(out("full") + " " + out("dense") + " --names only_one", DEMON_PLOT_BINARY), 0);

  // A sweep's results: one point per configuration, seeds averaged.
  const auto results = (dir() / "results.json").string();
  std::ofstream(results) << R"([
    {"name": "demp_a", "seed": 0, "kind": "demp", "test_accuracy": 0.80, "parameters": 90000,
     "flops": 2.0e6, "initial_flops": 4.0e6, "mean_flops_ratio": 0.7, "train_seconds": 100},
    {"name": "demp_a", "seed": 1, "kind": "demp", "test_accuracy": 0.70, "parameters": 80000,
     "flops": 2.0e6, "initial_flops": 4.0e6, "mean_flops_ratio": 0.7, "train_seconds": 110},
    {"name": "dense_w", "seed": 0, "kind": "dense", "test_accuracy": 0.79, "parameters": 100000,
     "flops": 4.0e6, "initial_flops": 4.0e6, "mean_flops_ratio": 1.0, "train_seconds": 120}])";
  ASSERT_EQ(run("--pareto " + results + " --out " + out("pareto.html"), DEMON_PLOT_BINARY), 0)
      << log();
  const std::string pareto = read(out("pareto.html"));
  EXPECT_NE(pareto.find("<td>demp_a</td><td>demp</td><td>2</td><td>75.00</td>"), std::string::npos)
      << pareto;
  EXPECT_NE(pareto.find("Accuracy against mean FLOPs"), std::string::npos);
  EXPECT_NE(run(out("missing.jsonl"), DEMON_PLOT_BINARY), 0);
}

TEST_F(ExampleCliTest, ScheduleFlagsReachThePruner) {
  ASSERT_EQ(full_rc(), 0);
  const std::string config = "--config " + (dir() / "tiny.json").string();
  // Events every 16 steps; none before step 20 leaves the ones at 32 and 48 of the full run's 3.
  ASSERT_EQ(run(config + " --out " + out("schedule") +
                " --pct-start 0.2 --schedule-span 40 --prune-start 20 --pressure time"
                " --element-flops 500"),
            0)
      << log();
  const auto demon = read(out("schedule") + "/config.json").at("demon");
  EXPECT_EQ(demon.at("pct_start"), 0.2);
  EXPECT_EQ(demon.at("schedule_span"), 40);
  EXPECT_EQ(demon.at("prune_start"), 20);
  EXPECT_EQ(demon.at("pressure"), "time");
  EXPECT_EQ(demon.at("element_flops"), 500.0);
  const auto reports = lines(out("schedule") + "/prune_reports.jsonl");
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports.front().at("step"), 32);
  // The pruner's own check names the bad value.
  EXPECT_NE(run(config + " --out " + out("schedule_bad") + " --pct-start 1"), 0);
  EXPECT_NE(log().find("pct_start must be in (0, 1)"), std::string::npos) << log();
  EXPECT_NE(run(config + " --out " + out("pressure_bad") + " --pressure fast"), 0);
  EXPECT_NE(log().find("--pressure"), std::string::npos) << log();
  EXPECT_NE(run(config + " --out " + out("element_bad") + " --element-flops -1"), 0);
  EXPECT_NE(log().find("--element-flops"), std::string::npos) << log();
}

// Channels-last on a CPU (the layout makes pruned widths faster there): the run trains, the
// pruner reads its activations and cuts, and the effective config records the layout.
TEST_F(ExampleCliTest, ChannelsLastOnTheCpuPrunes) {
  const std::string config = "--config " + (dir() / "tiny.json").string();
  ASSERT_EQ(run(config + " --out " + out("channels_last") + " --channels-last"), 0) << log();
  EXPECT_EQ(read(out("channels_last") + "/config.json").at("channels_last"), true);
  const auto summary = read(out("channels_last") + "/summary.json");
  EXPECT_LT(summary.at("flops_ratio").get<double>(), 1.0);
  EXPECT_GT(summary.at("test_accuracy").get<double>(), 0.0);
  const auto reports = lines(out("channels_last") + "/prune_reports.jsonl");
  ASSERT_EQ(reports.size(), 3u);
  int64_t removed = 0;
  for (const auto& report : reports)
    removed += report.at("units_removed").get<int64_t>();
  EXPECT_GT(removed, 0);
}

TEST_F(ExampleCliTest, BadInputIsAClearError) {
  EXPECT_NE(run("--data-dir " + out("no_such_dir") + " --epochs 1 --out " + out("bad")), 0);
  EXPECT_NE(log().find("no CIFAR-10 binary release"), std::string::npos) << log();
  std::ofstream(dir() / "bad.json") << R"({"widht": 0.5})";
  EXPECT_NE(run("--config " + (dir() / "bad.json").string()), 0);
  EXPECT_NE(log().find("unknown key \"widht\""), std::string::npos) << log();
}

}  // namespace
