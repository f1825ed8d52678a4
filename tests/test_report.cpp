// ModelSummary and PruneReport: the figures a user reads after a prune event, their text and
// their JSON.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "demon/graph.h"
#include "demon/report.h"
#include "demon/surgery.h"
#include "graph_support.h"
#include "support.h"

namespace {

using demon::ModelSummary;
using demon::PruneReport;
using namespace demon::testing;

ModelSummary half_pruned() {
  ModelSummary s;
  s.layers = {{"conv1", "Conv2d", 8, 4}, {"fc", "Linear", 4, 4}};
  s.initial_units = 14;
  s.live_units = 7;
  s.initial_parameters = 2000;
  s.parameters = 500;
  s.initial_flops = 40000;
  s.flops = 10000;
  s.warnings = {"conv2: pinned"};
  demon::HealthEvent event;
  event.step = 300;
  event.baseline_loss = 1.25;
  event.loss = 1.75;
  event.first_loss = 2.25;
  event.lambda_scale = 0.5;
  event.recovered_at = 420;
  s.health_events = {event};
  return s;
}

TEST(ReportTest, SummaryRatiosAreAgainstTheInitialModel) {
  const ModelSummary s = half_pruned();
  EXPECT_DOUBLE_EQ(s.neural_sparsity(), 0.5);
  EXPECT_DOUBLE_EQ(s.parameter_sparsity(), 0.75);
  EXPECT_DOUBLE_EQ(s.flops_ratio(), 0.25);
  // Nothing known of the initial model: nothing is pruned, rather than a division by zero.
  const ModelSummary empty;
  EXPECT_DOUBLE_EQ(empty.neural_sparsity(), 0.0);
  EXPECT_DOUBLE_EQ(empty.flops_ratio(), 1.0);
}

TEST(ReportTest, SummaryJsonRoundTripsEveryField) {
  const ModelSummary s = half_pruned();
  const nlohmann::json written = s.to_json();
  EXPECT_DOUBLE_EQ(written.at("flops_ratio").get<double>(), 0.25);
  const ModelSummary read = ModelSummary::from_json(written);
  ASSERT_EQ(read.layers.size(), 2u);
  EXPECT_EQ(read.layers[0].name, "conv1");
  EXPECT_EQ(read.layers[0].kind, "Conv2d");
  EXPECT_EQ(read.layers[0].initial, 8);
  EXPECT_EQ(read.layers[0].current, 4);
  EXPECT_EQ(read.live_units, 7);
  EXPECT_EQ(read.initial_parameters, 2000);
  EXPECT_EQ(read.flops, 10000);
  EXPECT_EQ(read.warnings, s.warnings);
  ASSERT_EQ(read.health_events.size(), 1u);
  EXPECT_EQ(read.health_events[0].recovered_at, 420);
  EXPECT_DOUBLE_EQ(read.health_events[0].lambda_scale, 0.5);
  EXPECT_EQ(read.to_json(), written);
}

TEST(ReportTest, SummaryTableHasALinePerLayerThenTotalsWarningsAndEvents) {
  const std::string table = half_pruned().table();
  EXPECT_NE(table.find("conv1"), std::string::npos);
  EXPECT_NE(table.find("neural sparsity 0.5000 (7 of 14 units live)"), std::string::npos) << table;
  EXPECT_NE(table.find("FLOPs 0.2500 of initial (10.0k of 40.0k per sample)"), std::string::npos)
      << table;
  EXPECT_NE(table.find("warning: conv2: pinned"), std::string::npos);
  EXPECT_NE(table.find("health guard: step 300"), std::string::npos) << table;
}

TEST(ReportTest, PruneReportJsonWritesAbsentFiguresAsNull) {
  PruneReport report;
  report.step = 200;
  report.death_check = "train";
  report.criterion = "dead";
  report.units_removed = 3;
  report.groups = {{"conv1", 8, 5}};
  const nlohmann::json written = report.to_json();
  EXPECT_EQ(written.at("death_check"), "train");
  EXPECT_EQ(written.at("criterion"), "dead");
  EXPECT_TRUE(written.at("output_change").is_null());  // the probe did not run
  EXPECT_TRUE(written.at("cost_ratio").is_null());     // no budget
  EXPECT_EQ(written.at("groups")[0].at("after"), 5);
  const std::string table = report.table();
  EXPECT_NE(table.find("prune event at step 200 (dead, train): removed 3 units from 1 groups"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("  conv1: 8 -> 5"), std::string::npos);
  EXPECT_EQ(table.find("output change"), std::string::npos);
  report.output_change = 0.0;
  report.cost_ratio = 0.6;
  report.lambda_after = 0.01;
  EXPECT_NE(report.table().find("output change 0"), std::string::npos);
  EXPECT_NE(report.table().find("cost ratio 0.6"), std::string::npos);
  EXPECT_DOUBLE_EQ(report.to_json().at("cost_ratio").get<double>(), 0.6);
}

TEST(ReportTest, SummarizeCountsTheModelAsTheGraphSeesIt) {
  torch::manual_seed(0);
  SmallCnn model;
  const auto batch = small_batch();
  auto graph = demon::DependencyGraph::discover(*model, model->forward(batch.data).sum());
  const ModelSummary initial = demon::summarize(graph, *model);
  EXPECT_EQ(initial.live_units, 14);  // conv1's 8 and conv2's 6 channels feed ReLUs
  EXPECT_EQ(initial.parameters, parameter_count(*model));
  EXPECT_EQ(initial.initial_parameters, initial.parameters);
  EXPECT_EQ(initial.flops, graph.flops());
  EXPECT_DOUBLE_EQ(initial.flops_ratio(), 1.0);

  // Cut two of conv1's channels: the widths and counts move, the initial figures stay.
  demon::prune_units(graph, {unit_of(graph, "conv1", 0), unit_of(graph, "conv1", 1)});
  const ModelSummary after = demon::summarize(graph, *model, &initial);
  EXPECT_EQ(after.live_units, 12);
  EXPECT_EQ(after.initial_units, 14);
  EXPECT_EQ(after.parameters, parameter_count(*model));
  EXPECT_LT(after.parameters, initial.parameters);
  EXPECT_LT(after.flops_ratio(), 1.0);
  bool found = false;
  for (const auto& layer : after.layers) {
    if (layer.name == "conv1") {
      found = true;
      EXPECT_EQ(layer.initial, 8);
      EXPECT_EQ(layer.current, 6);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
