# Sourced by the tests that run the example binary: a run of seconds on its synthetic set.

# One thread per run (ctest runs tests side by side), and no CIFAR-10 in reach: the example falls
# back to its synthetic set.
export OMP_NUM_THREADS=1
unset CIFAR10_DIR

# write_tiny_config FILE EPOCHS PRUNE_EVERY: width 1/8, 16 steps an epoch, a strong λ (units die
# within seconds), the eval-mode death check on one batch, a checkpoint every epoch.
write_tiny_config() {
  cat > "$1" <<JSON
{"width": 0.125, "epochs": $2, "batch_size": 64, "synthetic_train": 1024, "synthetic_test": 256,
 "lr": 0.03, "lr_schedule": "constant", "log_every": 8, "threads": 1,
 "death_check_batches": 1, "death_check_batch_size": 128,
 "demon": {"lambda_peak": 0.5, "prune_every": $3, "death_check": "both"}}
JSON
}

# train_tiny BINARY WORK: a fresh WORK (the current directory afterwards) with tiny.json (3 epochs,
# a prune event per epoch) and a finished run in WORK/run; its log is printed if it fails.
train_tiny() {
  rm -rf "$2"
  mkdir -p "$2"
  cd "$2"
  write_tiny_config tiny.json 3 16
  "$1" --config tiny.json --out "$PWD/run" >train.log 2>&1 || { cat train.log; exit 1; }
}
