// What data-parallel DemP adds to a step, measured directly: demon::allreduce_gradients over
// ResNet-18 (CIFAR) gradients at several widths, and the per-event activity all-reduce, on N
// ranks. Start it through the launcher, which gives each rank --world-size, --rank and
// --store-file:
//
//   bash scripts/launch.sh 2 build/bench/bench_allreduce -- --widths 0.125,0.5,1 --out ar.json
//
// Rank 0 prints a table and writes JSON: per width, the gradient bytes, the median time of one
// allreduce_gradients (milliseconds) and the bandwidth it reached, called back to back; then,
// in a training step (forward and backward of a batch of --batch per rank, then the all-reduce),
// the median compute time and the median time from the end of this rank's backward to the end
// of the all-reduce, which adds the wait for the slower rank. Run it with 1 rank too: the
// compute time of N ranks against 1 shows what sharing the machine's cores costs.
#include <demon/demon.h>
#include <demon/distributed.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "resnet.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"data-parallel collectives of demon, timed"};
  int world = 1, rank = 0, reps = 20;
  int64_t batch = 64;
  int64_t threads = 1;
  std::string store_file, widths_text = "0.125,0.5,1", out;
  app.add_option("--world-size", world)->required();
  app.add_option("--rank", rank)->required();
  app.add_option("--store-file", store_file)->required();
  app.add_option("--widths", widths_text, "width multipliers, comma-separated");
  app.add_option("--reps", reps, "timed all-reduces per width (median)")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "CPU threads")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "images per rank in the timed training steps")
      ->check(CLI::PositiveNumber);
  app.add_option("--out", out, "JSON output (rank 0)");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(static_cast<int>(threads));

  try {
    auto group = demon::make_gloo_group(demon::make_file_store(store_file, world), rank, world,
                                        demon::ProcessGroupOptions().hostname("127.0.0.1"));
    nlohmann::json results = nlohmann::json::array();
    std::stringstream widths(widths_text);
    std::string item;
    if (rank == 0)
      std::printf(
          "| width | gradient MB | allreduce_gradients alone (ms) | GB/s | step compute (ms) | "
          "all-reduce in the step (ms) |\n|---|---|---|---|---|---|\n");
    while (std::getline(widths, item, ',')) {
      const double width = std::stod(item);
      torch::manual_seed(0);
      resnet18_cifar10::ResNet18 model(resnet18_cifar10::ResNetOptions().width(width));
      auto x = torch::randn({8, 3, 32, 32});
      torch::cross_entropy_loss(model->forward(x), torch::randint(0, 10, {8})).backward();
      int64_t bytes = 0;
      for (const auto& p : model->parameters())
        bytes += p.numel() * static_cast<int64_t>(p.element_size());
      std::vector<double> times;
      for (int r = 0; r < reps + 2; ++r) {
        const auto start = Clock::now();
        demon::allreduce_gradients(model->parameters(), *group);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (r >= 2)  // the first two set up connections and buffers
          times.push_back(ms);
      }
      const double ms = median(times);
      // Training steps: each rank its own batch (different data, the same work).
      std::vector<double> compute, reduce;
      torch::manual_seed(static_cast<uint64_t>(rank) + 1);
      auto images = torch::randn({batch, 3, 32, 32});
      auto labels = torch::randint(0, 10, {batch});
      for (int r = 0; r < std::max(3, reps / 4) + 1; ++r) {
        const auto start = Clock::now();
        model->zero_grad();
        torch::cross_entropy_loss(model->forward(images), labels).backward();
        const auto computed = Clock::now();
        demon::allreduce_gradients(model->parameters(), *group);
        if (r == 0)
          continue;  // warm-up
        compute.push_back(std::chrono::duration<double, std::milli>(computed - start).count());
        reduce.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - computed).count());
      }
      results.push_back({{"width", width},
                         {"gradient_bytes", bytes},
                         {"ranks", world},
                         {"allreduce_ms", ms},
                         {"gb_per_s", static_cast<double>(bytes) / (ms * 1e6)},
                         {"batch_per_rank", batch},
                         {"step_compute_ms", median(compute)},
                         {"step_allreduce_ms", median(reduce)}});
      if (rank == 0)
        std::printf("| %g | %.1f | %.2f | %.2f | %.1f | %.2f |\n", width,
                    static_cast<double>(bytes) / 1e6, ms, static_cast<double>(bytes) / (ms * 1e6),
                    median(compute), median(reduce));
    }
    if (rank == 0 && !out.empty())
      std::ofstream(out) << results.dump(2) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    return 1;
  }
}
