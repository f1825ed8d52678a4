#!/usr/bin/env python3
"""Runs a grid of example runs, resumes an interrupted grid, and collects the results.

    python3 tools/sweep.py SPEC.json run       # every run not finished yet, in sequence
    python3 tools/sweep.py SPEC.json list      # the commands, one per line (to spread them)
    python3 tools/sweep.py SPEC.json collect   # OUT/results.csv and OUT/results.json
    python3 tools/sweep.py SPEC.json table     # collect, then a Markdown table (mean ± sd)

A spec names the program, the arguments every run shares, the seeds, and the runs:

    {
      "program": "build/examples/resnet18_cifar10/resnet18_cifar10",
      "common": ["--config", "configs/resnet18_adamw_cpu_short.json", "--data-dir", "$CIFAR10_DIR"],
      "out": "runs/sweep",
      "seeds": [0, 1],
      "runs": {"dense": ["--dense"], "demp_1e-2": ["--lambda", "1e-2"]}
    }

Run NAME with seed S writes OUT/NAME/seed_S/ (the program's --out); it counts as finished when
its summary.json exists, so `run` after an interruption redoes only what was not finished (an
unfinished run restarts from its last epoch checkpoint with --resume). Each run is an
independent command: `list` prints them, and `run --shard K/N` runs every N-th one from the
K-th, so N machines can share a grid (then copy the OUT folders together and `collect`);
`--only NAME,NAME` restricts `run` and `list` to some runs.
Arguments undergo $VAR expansion from the environment. Standard library only.
"""

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def load_spec(path):
    with open(path) as f:
        spec = json.load(f)
    for key in ("program", "out", "runs"):
        if key not in spec:
            sys.exit(f"sweep: {path} has no \"{key}\"")
    spec.setdefault("common", [])
    spec.setdefault("seeds", [0])
    return spec


def expand(args):
    return [os.path.expandvars(str(a)) for a in args]


def grid(spec):
    """(name, seed, out_dir, argv) for every run, in spec order."""
    items = []
    for name, args in spec["runs"].items():
        for seed in spec["seeds"]:
            out = os.path.join(spec["out"], name, f"seed_{seed}")
            argv = expand([spec["program"]] + spec["common"] + args +
                          ["--seed", seed, "--out", out, "--resume"])
            items.append((name, seed, out, argv))
    return items


def finished(out):
    return os.path.exists(os.path.join(out, "summary.json"))


def run(spec, shard, only):
    index, count = shard
    items = [item for i, item in enumerate(grid(spec))
             if i % count == index and (not only or item[0] in only)]
    todo = [item for item in items if not finished(item[2])]
    print(f"sweep: {len(items) - len(todo)} of {len(items)} runs finished, {len(todo)} to go",
          flush=True)
    failed = 0
    for name, seed, out, argv in todo:
        os.makedirs(out, exist_ok=True)
        start = time.time()
        print(f"sweep: {name} seed {seed}: {shlex.join(argv)}", flush=True)
        with open(os.path.join(out, "log.txt"), "a") as log:
            status = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT)
        print(f"sweep: {name} seed {seed}: exit {status} after {time.time() - start:.0f} s",
              flush=True)
        failed += status != 0
    return 1 if failed else 0


COLUMNS = ["name", "seed", "kind", "width", "lambda_peak", "pressure", "test_accuracy",
           "best_test_accuracy",
           "parameters", "initial_parameters", "param_sparsity", "neural_sparsity", "flops",
           "initial_flops", "flops_ratio",
           "mean_flops_ratio", "train_seconds", "images_per_second", "prune_events", "epochs"]


def kind_of(config):
    if config.get("dense"):
        return "dense"
    if config.get("demon", {}).get("target", 0) > 0:
        return "budget"
    baseline = config.get("baseline", "demp")
    return baseline


def collect(spec):
    rows = []
    for name, seed, out, _ in grid(spec):
        if not finished(out):
            continue
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        config = {}
        if os.path.exists(os.path.join(out, "config.json")):
            with open(os.path.join(out, "config.json")) as f:
                config = json.load(f)
        row = {"name": name, "seed": seed, "kind": kind_of(config),
               "width": config.get("width"),
               "lambda_peak": None if config.get("dense") else
               config.get("demon", {}).get("lambda_peak"),
               "pressure": None if config.get("dense") else
               config.get("demon", {}).get("pressure", "uniform")}
        for column in COLUMNS:
            if column not in row:
                row[column] = summary.get(column)
        rows.append(row)
    os.makedirs(spec["out"], exist_ok=True)
    with open(os.path.join(spec["out"], "results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    with open(os.path.join(spec["out"], "results.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"sweep: {len(rows)} finished runs in {spec['out']}/results.csv and results.json",
          file=sys.stderr)
    return rows


def table(spec):
    """A Markdown table of the finished runs, one line per run name: mean ± sd over seeds."""
    rows = collect(spec)
    by_name = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)

    def cell(values, fmt):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        mean = statistics.fmean(values)
        if len(values) == 1:
            return fmt.format(mean)
        return fmt.format(mean) + " ± " + fmt.format(statistics.stdev(values))

    def mflops(run, ratio_key):
        # Absolute, so that nets of other widths compare: the ratio is to each run's own start.
        if run.get("initial_flops") is None or run.get(ratio_key) is None:
            return None
        return run["initial_flops"] * run[ratio_key] / 1e6

    print("| run | kind | seeds | test accuracy (%) | parameters | final MFLOPs | mean MFLOPs |"
          " train time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in by_name.items():
        print(f"| {name} | {runs[0]['kind']} | {len(runs)} "
              f"| {cell([100 * r['test_accuracy'] for r in runs], '{:.2f}')} "
              f"| {cell([r['parameters'] for r in runs], '{:.0f}')} "
              f"| {cell([mflops(r, 'flops_ratio') for r in runs], '{:.2f}')} "
              f"| {cell([mflops(r, 'mean_flops_ratio') for r in runs], '{:.2f}')} "
              f"| {cell([r['train_seconds'] for r in runs], '{:.0f}')} |")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec")
    parser.add_argument("action", choices=["run", "list", "collect", "table"])
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th run from the K-th")
    parser.add_argument("--only", default="", help="NAME,NAME: only these runs (all seeds)")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    try:
        k, n = (int(x) for x in args.shard.split("/"))
        assert 0 <= k < n
    except (ValueError, AssertionError):
        sys.exit(f"sweep: --shard must be K/N with 0 <= K < N, got {args.shard}")
    only = {name for name in args.only.split(",") if name}
    unknown = only - set(spec["runs"])
    if unknown:
        sys.exit(f"sweep: --only names runs the spec lacks: {', '.join(sorted(unknown))}")
    if args.action == "list":
        for name, _, _, argv in grid(spec):
            if not only or name in only:
                print(shlex.join(argv))
        return 0
    if args.action == "run":
        status = run(spec, (k, n), only)
        collect(spec)
        return status
    if args.action == "table":
        return table(spec)
    collect(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
