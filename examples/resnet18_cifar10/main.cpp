// ResNet-18 on CIFAR-10 with Demon Pruning, or its dense baseline, in one harness.
//
//   resnet18_cifar10 --config configs/resnet18_adamw.json --data-dir DIR --out runs/adamw
//   resnet18_cifar10 --config configs/smoke.json                  (synthetic data, CPU minutes)
//   resnet18_cifar10 --config ... --out runs/adamw --resume       (continue an interrupted run)
//   resnet18_cifar10 --config ... --eval-only runs/adamw/model_final.pt
//   resnet18_cifar10 --config ... --export runs/adamw/model_final.pt --out runs/adamw/export
//
// The command line overrides the config file; the effective config is written to --out.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <exception>
#include <string>

#include "config.h"
#include "log.h"
#include "trainer.h"

int main(int argc, char** argv) {
  using resnet18_cifar10::TrainConfig;
  CLI::App app{"ResNet-18 / CIFAR-10 with Demon Pruning (demon), or the dense baseline"};
  std::string config_path, out_dir = "out", eval_only, export_from;
  bool resume = false;
  TrainConfig cli;  // holds the values given on the command line
  double lambda = 0, sigma = 0, element_flops = 0;
  int64_t prune_every = 0, width_multiple = 0, schedule_span = 0, prune_start = 0;
  double pct_start = 0.0;
  double target_flops = 0.0, target_by = 0.0;
  std::string schedule, baseline, pressure;
  bool guard = false;
  app.add_option("--config", config_path, "JSON config (see configs/); defaults otherwise")
      ->check(CLI::ExistingFile);
  app.add_option("--data-dir", cli.data_dir,
                 "CIFAR-10 binary release (data_batch_*.bin, test_batch.bin, here or in "
                 "cifar-10-batches-bin/); without it a synthetic CIFAR-shaped set is used");
  app.add_option("--out", out_dir, "output directory (metrics, reports, checkpoints, summary)");
  app.add_option("--epochs", cli.epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--device", cli.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--seed", cli.seed, "seed for data order, augmentation, initialization, noise");
  app.add_option("--optimizer", cli.optimizer, "adamw or sgd")
      ->check(CLI::IsMember({"adamw", "sgd"}));
  app.add_option("--lr", cli.lr, "peak learning rate")->check(CLI::PositiveNumber);
  app.add_option("--weight-decay", cli.weight_decay, "weight decay")->check(CLI::NonNegativeNumber);
  app.add_option("--lambda", lambda, "DemP: peak of the Lasso strength on BatchNorm scales")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--pressure", pressure,
                 "DemP: how λ is shared: uniform, flops (in proportion to the FLOPs cutting a "
                 "unit saves) or time (FLOPs plus activation elements)")
      ->check(CLI::IsMember({"uniform", "flops", "time"}));
  app.add_option("--element-flops", element_flops,
                 "DemP, --pressure time: what an activation element costs in FLOPs (1000; "
                 "tools/element_cost.py fits it)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sigma", sigma, "DemP: peak of the noise std")->check(CLI::NonNegativeNumber);
  app.add_option("--prune-every", prune_every, "DemP: steps between prune events")
      ->check(CLI::PositiveNumber);
  app.add_option("--width-multiple", width_multiple,
                 "DemP: round each layer's width after a cut up to a multiple of this")
      ->check(CLI::PositiveNumber);
  app.add_option(
         "--target-flops", target_flops,
         "DemP budget: reach this fraction of the dense FLOPs (λ then follows a controller)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--target-by", target_by, "DemP budget: by this fraction of the run (0.6)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--guard", guard,
               "DemP collapse guard: keep 10% of every layer, protect it from the pressure, cut at "
               "most half the units at once");
  app.add_option("--schedule", schedule, "DemP: shape of λ(t) and σ(t)")
      ->check(CLI::IsMember({"one_cycle", "constant", "cosine_decay", "linear_warmup", "hold"}));
  app.add_option("--schedule-span", schedule_span,
                 "DemP: steps over which λ(t) and σ(t) run their shape (default 0.87 of the run)")
      ->check(CLI::PositiveNumber);
  app.add_option("--pct-start", pct_start,
                 "DemP, one_cycle: fraction of the span spent rising to the peak (0.3)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--prune-start", prune_start, "DemP: no prune event before this step (0)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--baseline", baseline, "demp, or slimming (Network Slimming in this harness)")
      ->check(CLI::IsMember({"demp", "slimming"}));
  app.add_option("--batch-size", cli.batch_size, "training batch size")->check(CLI::PositiveNumber);
  app.add_option("--width", cli.width, "width multiplier of ResNet-18 (1 = 11.17 M parameters)")
      ->check(CLI::PositiveNumber);
  app.add_option("--amp", cli.amp, "CUDA autocast: none, bf16 or fp16")
      ->check(CLI::IsMember({"none", "bf16", "fp16"}));
  app.add_flag("--channels-last", cli.channels_last,
               "channels-last memory format (CUDA; on a CPU, faster for pruned widths)");
  app.add_flag("--cudnn-benchmark", cli.cudnn_benchmark,
               "CUDA: cuDNN times its algorithms per shape (again after each prune event)");
  app.add_option("--threads", cli.threads, "CPU threads (0: all cores unless OMP_NUM_THREADS)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-every", cli.log_every, "steps between progress lines")
      ->check(CLI::PositiveNumber);
  app.add_option("--eval-every", cli.eval_every, "epochs between test-set evaluations")
      ->check(CLI::PositiveNumber);
  app.add_flag("--dense", cli.dense, "train without DemP: the dense baseline");
  app.add_flag("--resume", resume, "continue from OUT/checkpoint.pt if present");
  int64_t stop_after = 0;
  app.add_option("--stop-after", stop_after,
                 "train at most this many epochs now, then stop with a checkpoint (--resume later)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--eval-only", eval_only, "evaluate this checkpoint on the test set and exit")
      ->check(CLI::ExistingFile);
  app.add_option("--export", export_from,
                 "write this checkpoint to --out as safetensors for PyTorch "
                 "(tools/demon_to_pytorch.py) and exit")
      ->check(CLI::ExistingFile);
  resnet18_cifar10::RunOptions run;
  app.add_option("--world-size", run.world_size,
                 "data parallel: number of ranks (scripts/launch.sh starts them)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rank", run.rank, "data parallel: this process's rank, 0 .. world size - 1")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--store-file", run.store_file,
                 "data parallel: a file where the ranks meet (absent before the run)");
  app.add_option("--master-addr", run.master_addr,
                 "data parallel: rank 0's address, where the ranks meet (instead of a file)");
  app.add_option("--master-port", run.master_port, "data parallel: rank 0's port (29500)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--bind-addr", run.bind_addr,
                 "data parallel, Gloo: the address this rank listens on (default: the host "
                 "name's; scripts/launch.sh gives 127.0.0.1)");
  CLI11_PARSE(app, argc, argv);

  try {
    nlohmann::json merged =
        config_path.empty() ? TrainConfig().to_json() : TrainConfig::load(config_path).to_json();
    const nlohmann::json given = cli.to_json();
    for (const char* key :
         {"data_dir", "epochs", "device", "seed", "optimizer", "lr", "weight_decay", "batch_size",
          "width", "amp", "threads", "log_every", "eval_every"}) {
      const std::string flag = std::string("--") + key;
      std::string dashed = flag;
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      if (app.count(dashed) > 0)
        merged[key] = given[key];
    }
    if (app.count("--channels-last"))
      merged["channels_last"] = true;
    if (app.count("--cudnn-benchmark"))
      merged["cudnn_benchmark"] = true;
    if (app.count("--dense"))
      merged["dense"] = true;
    if (app.count("--lambda"))
      merged["demon"]["lambda_peak"] = lambda;
    if (app.count("--pressure"))
      merged["demon"]["pressure"] = pressure;
    if (app.count("--element-flops"))
      merged["demon"]["element_flops"] = element_flops;
    if (app.count("--sigma"))
      merged["demon"]["sigma_peak"] = sigma;
    if (app.count("--prune-every"))
      merged["demon"]["prune_every"] = prune_every;
    if (app.count("--width-multiple"))
      merged["demon"]["width_multiple"] = width_multiple;
    if (app.count("--target-flops")) {
      merged["demon"]["target"] = target_flops;
      merged["demon"]["target_metric"] = "flops";
    }
    if (app.count("--target-by"))
      merged["demon"]["target_by"] = target_by;
    if (guard) {
      merged["demon"]["min_width_fraction"] = 0.1;
      merged["demon"]["protect_floor"] = true;
      merged["demon"]["max_cut_fraction"] = 0.5;
    }
    if (app.count("--schedule"))
      merged["demon"]["schedule"] = schedule;
    if (app.count("--schedule-span"))
      merged["demon"]["schedule_span"] = schedule_span;
    if (app.count("--pct-start"))
      merged["demon"]["pct_start"] = pct_start;
    if (app.count("--prune-start"))
      merged["demon"]["prune_start"] = prune_start;
    if (app.count("--baseline"))
      merged["baseline"] = baseline;
    const TrainConfig config = TrainConfig::from_json(merged);

    if (!export_from.empty()) {
      if (!app.count("--out"))
        throw std::invalid_argument("--export needs --out DIR, where the files go");
      resnet18_cifar10::export_checkpoint(config, export_from, out_dir);
      return 0;
    }
    if (!eval_only.empty()) {
      resnet18_cifar10::evaluate_checkpoint(config, eval_only, app.count("--out") ? out_dir : "");
      return 0;
    }
    run.out_dir = out_dir;
    run.resume = resume;
    run.stop_after_epochs = stop_after;
    resnet18_cifar10::train(config, run);
    return 0;
  } catch (const std::exception& error) {
    example_log::error("%s", error.what());
    return 1;
  }
}
