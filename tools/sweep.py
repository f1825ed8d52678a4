#!/usr/bin/env python3
"""Runs a grid of example runs, resumes an interrupted grid, and collects the results.

    python3 tools/sweep.py SPEC.json run       # every run not finished yet, in sequence
    python3 tools/sweep.py SPEC.json list      # the commands, one per line (to spread them)
    python3 tools/sweep.py SPEC.json collect   # OUT/results.csv and OUT/results.json
    python3 tools/sweep.py SPEC.json table     # collect, then a Markdown table (mean ± sd)
    python3 tools/sweep.py SPEC.json table --records docs/data/results_w8.json   # from committed records
    python3 tools/sweep.py SPEC.json check --records docs/data/results_w8.json --doc docs/results.md

A spec names the program, the arguments every run shares, the seeds, and the runs:

    {
      "program": "build/examples/resnet18_cifar10/resnet18_cifar10",
      "common": ["--config", "configs/resnet18_adamw_cpu_short.json", "--data-dir", "$CIFAR10_DIR"],
      "out": "runs/sweep",
      "seeds": [0, 1],
      "runs": {"dense": ["--dense"], "demp_1e-2": ["--lambda", "1e-2"]}
    }

A run may bring its own program and shared arguments (a peer tool beside the example): then its
value is an object, {"program": ..., "common": [...], "args": [...]}, each key defaulting to the
spec's (args to none). A program is a string or a list (an interpreter and its script).

Run NAME with seed S writes OUT/NAME/seed_S/ (the program's --out); it counts as finished when
its summary.json exists, so `run` after an interruption redoes only what was not finished (an
unfinished run restarts from its last epoch checkpoint with --resume). `collect` records each
run's command, and the commit and machine named by $DEMON_COMMIT and $DEMON_MACHINE. Each run is an
independent command: `list` prints them, and `run --shard K/N` runs every N-th one from the
K-th, so N machines can share a grid (then copy the OUT folders together and `collect`);
`--only NAME,NAME` restricts `run` and `list` to some runs.
Arguments undergo $VAR expansion from the environment. `--records FILE` renders the table from a
file of records (what `collect` writes) instead of the runs' folders; `check` fails unless the
table between `<!-- NAME begin -->` and `<!-- NAME end -->` in `--doc` is the one rendered, NAME
being the records file's name. Standard library only.
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

from doc_section import check_section


RUN_KEYS = ("program", "common", "args")


def load_spec(path):
    with open(path) as f:
        spec = json.load(f)
    for key in ("program", "out", "runs"):
        if key not in spec:
            sys.exit(f"sweep: {path} has no \"{key}\"")
    spec.setdefault("common", [])
    spec.setdefault("seeds", [0])
    for name, value in spec["runs"].items():
        if isinstance(value, dict):
            unknown = set(value) - set(RUN_KEYS)
            if unknown:
                sys.exit(f"sweep: run \"{name}\" has unknown keys {sorted(unknown)}; "
                         f"a run object takes {', '.join(RUN_KEYS)}")
        elif not isinstance(value, list):
            sys.exit(f"sweep: run \"{name}\" must be a list of arguments or an object")
    return spec


def expand(args):
    return [os.path.expandvars(str(a)) for a in args]


def command_of(spec, value):
    """The program (as a list), shared arguments and own arguments of a run's spec value."""
    if isinstance(value, list):
        value = {"args": value}
    program = value.get("program", spec["program"])
    program = program if isinstance(program, list) else [program]
    return program + value.get("common", spec["common"]) + value.get("args", [])


def grid(spec):
    """(name, seed, out_dir, argv) for every run, in spec order."""
    items = []
    for name, value in spec["runs"].items():
        for seed in spec["seeds"]:
            out = os.path.join(spec["out"], name, f"seed_{seed}")
            argv = expand(command_of(spec, value) + ["--seed", seed, "--out", out, "--resume"])
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
           "mean_flops_ratio", "train_seconds", "images_per_second", "prune_events", "epochs",
           "threads", "command", "commit", "machine"]


def kind_of(config):
    if config.get("dense"):
        return "dense"
    if config.get("demon", {}).get("target", 0) > 0:
        return "budget"
    baseline = config.get("baseline", "demp")
    return baseline


def collect(spec):
    rows = []
    for name, seed, out, argv in grid(spec):
        if not finished(out):
            continue
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        # The example writes its config beside the summary; a peer tool's run (tools/baselines/)
        # puts the config it read into its summary, and its own name under "baseline".
        example = os.path.exists(os.path.join(out, "config.json"))
        if example:
            with open(os.path.join(out, "config.json")) as f:
                config = json.load(f)
            kind = kind_of(config)
        else:
            config = summary.get("config", {})
            kind = summary.get("baseline") or kind_of(config)
        pressured = example and not config.get("dense")  # λ and pressure are demon's
        row = {"name": name, "seed": seed, "kind": kind,
               "width": config.get("width"),
               "lambda_peak": config.get("demon", {}).get("lambda_peak") if pressured else None,
               # None: the library default
               "pressure": config.get("demon", {}).get("pressure") if pressured else None,
               # What a record needs to be traced: the command, and the commit and machine the
               # caller names (DEMON_COMMIT, DEMON_MACHINE), as tools/panel.py records them.
               "command": shlex.join(argv), "commit": os.environ.get("DEMON_COMMIT"),
               "machine": os.environ.get("DEMON_MACHINE")}
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


def table_lines(rows):
    """A Markdown table of runs, one line per run name: mean ± sd over seeds, and each seed.

    "vs the dense line": each seed's accuracy against the straight line through the same seed's
    dense nets (of other widths) at the run's final FLOPs; "-" outside their range.
    """
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

    def dense_line(seed, flops):
        """Accuracy of the line through this seed's dense nets at these FLOPs (None outside)."""
        points = sorted((r["initial_flops"], r["test_accuracy"]) for r in rows
                        if r["kind"] == "dense" and r["seed"] == seed
                        and r.get("initial_flops") is not None)
        for (f0, a0), (f1, a1) in zip(points, points[1:]):
            if f0 <= flops <= f1 and f1 > f0:
                return a0 + (flops - f0) / (f1 - f0) * (a1 - a0)
        return None

    def versus_line(runs):
        if runs[0]["kind"] == "dense":
            return "-"
        cells = []
        for r in sorted(runs, key=lambda r: r["seed"]):
            flops = mflops(r, "flops_ratio")
            line = None if flops is None else dense_line(r["seed"], flops * 1e6)
            cells.append("-" if line is None else f"{100 * (r['test_accuracy'] - line):+.2f}")
        return " / ".join(cells)

    def per_seed(runs):
        ordered = sorted(runs, key=lambda r: r["seed"])
        return " / ".join(f"{100 * r['test_accuracy']:.2f} (seed {r['seed']})" for r in ordered)

    # No time column: records gathered on other machines and loads do not compare in time.
    def commits(runs):
        return " / ".join(str(r.get("commit") or "-")
                          for r in sorted(runs, key=lambda r: r["seed"]))

    lines = ["| run | kind | seeds | test accuracy (%) | each seed | parameters | final MFLOPs "
             "| mean MFLOPs | vs the dense line (points) | commit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in by_name.items():
        lines.append(
            f"| {name} | {runs[0]['kind']} | {len(runs)} "
            f"| {cell([100 * r['test_accuracy'] for r in runs], '{:.2f}')} "
            f"| {per_seed(runs)} "
            f"| {cell([r['parameters'] for r in runs], '{:.0f}')} "
            f"| {cell([mflops(r, 'flops_ratio') for r in runs], '{:.2f}')} "
            f"| {cell([mflops(r, 'mean_flops_ratio') for r in runs], '{:.2f}')} "
            f"| {versus_line(runs)} | {commits(runs)} |")
    return lines


def rows_for(spec, records):
    if records:
        with open(records) as f:
            return json.load(f)
    return collect(spec)


def check(spec, records, doc):
    """0 when DOC's table between the markers named after the records is the rendered one."""
    name = os.path.basename(records) if records else os.path.basename(spec["out"])
    return check_section(doc, name, table_lines(rows_for(spec, records)), "sweep")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec")
    parser.add_argument("action", choices=["run", "list", "collect", "table", "check"])
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th run from the K-th")
    parser.add_argument("--only", default="", help="NAME,NAME: only these runs (all seeds)")
    parser.add_argument("--records", help="table, check: render from this records file")
    parser.add_argument("--doc", help="check: the Markdown file whose table to check")
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
        print("\n".join(table_lines(rows_for(spec, args.records))))
        return 0
    if args.action == "check":
        if not args.doc:
            sys.exit("sweep: check needs --doc")
        return check(spec, args.records, args.doc)
    collect(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
