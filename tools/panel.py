#!/usr/bin/env python3
"""Runs the model panel of bench_panel, resumes it, and renders its table.

    python3 tools/panel.py SPEC.json run [--jobs N] [--only TEXT]   # every run not recorded yet
    python3 tools/panel.py SPEC.json list                            # the commands
    python3 tools/panel.py SPEC.json table                           # the Markdown table
    python3 tools/panel.py SPEC.json check DOC.md                    # DOC's table is the rendered one

A spec names the program, the records file (JSON lines, one row per run, as bench_panel writes
them), and the grid: tasks with their epochs, models, configurations and seeds:

    {
      "program": "build/bench/bench_panel",
      "data_dir": "$CIFAR10_DIR",
      "records": "docs/data/panel.jsonl",
      "threads": 1,
      "tasks": {"small": 15, "cifar10": 5},
      "models": ["quickstart", "vgg"],
      "seeds": [0],
      "configs": {"dense": {"mode": "dense"},
                  "default": {"mode": "demp"},
                  "target_0.5": {"mode": "demp", "demon": {"target": 0.5}},
                  "lambda_2": {"demon": {"lambda_relative": 2}, "tasks": ["small"]}}
    }

A task may also be {"epochs": E, "models": [...]}, for a subset of the models; a configuration
may name its "tasks" (default: all), "seeds" and "epochs".

Each run's log goes to the spec's "logs" folder (default out/panel_logs). A run is recorded when
the records hold a row of its task, model, configuration (label) and
seed, so `run` after an interruption does only what is missing. `check` exits 1 when the table
between DOC's `<!-- SPEC begin -->` and `<!-- SPEC end -->` (SPEC: the spec's file name) differs
from what `table` renders (a test runs it, so the docs cannot drift from the records). Standard
library only.
"""

import argparse
import json
import os
import subprocess
import sys
import threading

from doc_section import check_section

def load_spec(path):
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"panel: cannot read the spec {path}: {error}")
    for key in ("program", "records", "tasks", "models", "configs"):
        if key not in spec:
            sys.exit(f"panel: {path} has no \"{key}\"")
    spec.setdefault("seeds", [0])
    spec.setdefault("threads", 1)
    spec["records"] = os.path.expandvars(spec["records"])
    return spec


def read_records(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                sys.exit(f"panel: {path}:{number}: not JSON ({error})")
    return rows


def key(row):
    return (row["task"], row["model"], row["label"], row["seed"])


def tasks(spec):
    """(task, epochs, models) for every task; a task is its epochs, or {"epochs", "models"}."""
    items = []
    for task, value in spec["tasks"].items():
        if isinstance(value, dict):
            items.append((task, value["epochs"], value.get("models", spec["models"])))
        else:
            items.append((task, value, spec["models"]))
    return items


def grid(spec):
    """(key, argv) for every run, in spec order."""
    items = []
    for task, epochs, models in tasks(spec):
        for model in models:
            for label, config in spec["configs"].items():
                if task not in config.get("tasks", [task]):
                    continue
                for seed in config.get("seeds", spec["seeds"]):
                    argv = [os.path.expandvars(spec["program"]), "--model", model, "--task", task,
                            "--mode", config.get("mode", "demp"), "--label", label,
                            "--epochs", str(config.get("epochs", epochs)),
                            "--seed", str(seed), "--threads", str(spec["threads"]),
                            "--out", spec["records"]]
                    if spec.get("data_dir"):
                        argv += ["--data-dir", os.path.expandvars(spec["data_dir"])]
                    if config.get("demon"):
                        argv += ["--demon", json.dumps(config["demon"], sort_keys=True)]
                    items.append(((task, model, label, seed), argv))
    return items


def run(spec, jobs, only):
    done = {key(row) for row in read_records(spec["records"])}
    todo = [(k, argv) for k, argv in grid(spec)
            if k not in done and (not only or only in " ".join(map(str, k)))]
    print(f"panel: {len(todo)} runs to do, {jobs} at a time", flush=True)
    os.makedirs(os.path.dirname(spec["records"]) or ".", exist_ok=True)
    logs = spec.get("logs", "out/panel_logs")
    os.makedirs(logs, exist_ok=True)
    lock = threading.Lock()
    failures = []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                k, argv = todo.pop(0)
            # The run's log goes to a file, not a pipe: a run outlives this driver if it is
            # stopped, and its row still reaches the records.
            log = os.path.join(logs, "_".join(map(str, k)) + ".log")
            with open(log, "w") as err:
                result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=err)
            with lock:
                status = "ok" if result.returncode == 0 else f"failed ({result.returncode}), see {log}"
                print(f"panel: {' '.join(map(str, k))}: {status}", flush=True)
                if result.returncode != 0:
                    failures.append(k)

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 1 if failures else 0


def render(spec):
    """One line per task, model and configuration: accuracy against the dense twin's, the lowest
    epoch, final and mean FLOPs, the λ in force, the health guard's events."""
    rows = read_records(spec["records"])
    by = {}
    for row in rows:
        by.setdefault((row["task"], row["model"], row["label"]), []).append(row)
    # The training-mode accuracy (batch statistics) is shown where the records have it.
    batch_statistics = any("batch_statistics_accuracy_by_epoch" in r for r in rows)
    header = ["task", "model", "run", "test accuracy", "vs dense (points)", "lowest epoch"] + \
        (["lowest, batch statistics"] if batch_statistics else []) + \
        ["FLOPs", "mean FLOPs", "λ peak", "guard trips"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for task, epochs, models in tasks(spec):
        for model in models:
            dense = {r["seed"]: r for label, config in spec["configs"].items()
                     if config.get("mode") == "dense" for r in by.get((task, model, label), [])}
            for label, config in spec["configs"].items():
                runs = sorted(by.get((task, model, label), []), key=lambda r: r["seed"])
                if not runs:
                    continue
                gap = [100 * (r["test_accuracy"] - dense[r["seed"]]["test_accuracy"])
                       for r in runs if r["seed"] in dense]
                cells = [f"{task}, {config.get('epochs', epochs)} epochs", model, label,
                         joined(runs, lambda r: f"{100 * r['test_accuracy']:.2f}%"),
                         "-" if config.get("mode") == "dense" or not gap else
                         "/".join(f"{g:+.2f}" for g in gap),
                         joined(runs, lambda r: f"{100 * min(r['test_accuracy_by_epoch']):.1f}%")]
                if batch_statistics:
                    cells.append(joined(runs, lambda r: "-" if "batch_statistics_accuracy_by_epoch"
                                        not in r else
                                        f"{100 * min(r['batch_statistics_accuracy_by_epoch']):.1f}%"))
                cells += [joined(runs, lambda r: f"{r['flops_ratio']:.2f}"),
                         joined(runs, lambda r: f"{r['mean_flops_ratio']:.2f}"),
                         "-" if config.get("mode") == "dense" else
                         joined(runs, lambda r: f"{r['lambda_peak']:.2g}"),
                         "-" if config.get("mode") == "dense" else
                         joined(runs, lambda r: str(r["health_events"]))]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def joined(runs, cell):
    return "/".join(cell(r) for r in runs)


def check(spec, spec_path, doc):
    return check_section(doc, os.path.basename(spec_path), render(spec).splitlines(), "panel")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec")
    parser.add_argument("command", choices=["run", "list", "table", "check"])
    parser.add_argument("doc", nargs="?")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    if args.command == "run":
        return run(spec, args.jobs, args.only)
    if args.command == "list":
        for _, argv in grid(spec):
            print(" ".join(argv))
        return 0
    if args.command == "table":
        sys.stdout.write(render(spec))
        return 0
    if not args.doc:
        sys.exit("panel: check needs the document")
    return check(spec, args.spec, args.doc)


if __name__ == "__main__":
    sys.exit(main())
