#!/usr/bin/env python3
"""Markdown tables of benchmark records, for docs/benchmarks.md, and the check that keeps them.

    python3 tools/bench_table.py render docs/data/bench_pruner.json      # print the table
    python3 tools/bench_table.py check docs/benchmarks.md docs/data/*.json

A record is what a benchmark program wrote: Google Benchmark's JSON (--benchmark_out) with the
run's `command`, `commit`, `machine` and `threads` added to its "context", or bench_step_profile's
JSON (--out) with the same under "record". `render` prints a record's table and a line naming its
command, commit and machine. `check` fails unless, for each record NAME.json, the text between
`<!-- NAME.json begin -->` and `<!-- NAME.json end -->` in the document is what `render` prints.
Standard library only.
"""
import json
import os
import sys

from doc_section import check_section


def format_time(value, unit):
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def format_counter(value):
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def benchmark_lines(record):
    """One row per benchmark: its name, times, iterations and counters."""
    skip = {"name", "family_index", "per_family_instance_index", "run_name", "run_type",
            "repetitions", "repetition_index", "threads", "iterations", "real_time", "cpu_time",
            "time_unit", "aggregate_name", "aggregate_unit", "label"}
    lines = ["| benchmark | time | CPU time | iterations | counters |", "|---|---|---|---|---|"]
    for b in record["benchmarks"]:
        counters = ", ".join(f"{k} {format_counter(v)}" for k, v in b.items()
                             if k not in skip and isinstance(v, (int, float)))
        lines.append(f"| `{b['name']}` | {format_time(b['real_time'], b['time_unit'])} "
                     f"| {format_time(b['cpu_time'], b['time_unit'])} | {b['iterations']} "
                     f"| {counters or '-'} |")
    return lines


def profile_lines(record):
    """bench_step_profile: the step and its parts, then the pruner's costs, per configuration."""
    rows = record["rows"]
    models = any(r.get("model", "random cuts") != "random cuts" for r in rows)
    head = " model |" if models else ""
    rule = "---|" if models else ""

    def model(r):
        return f" {r.get('model', 'random cuts')} |" if models else ""

    lines = [f"Batch {record['batch']}, {record['threads']} threads on {record['device']}, "
             f"width multiple {record['width_multiple']}, median of {record['steps']} steps.", "",
             "| width | FLOPs ratio | step (ms) | forward | backward | optimizer | pruner adds "
             "| overhead | realized speed-up | FLOPs speed-up | efficiency |" + head,
             "|---|---|---|---|---|---|---|---|---|---|---|" + rule]
    for r in rows:
        adds = r["activity_ms"] + r["live_mask_ms"] + r["regularizer_ms"] + r["noise_ms"]
        lines.append(
            f"| {r['width']:g} | {r['flops_ratio']:.3f} | {r['bare_step_ms']:.0f} | "
            f"{r['forward_ms']:.0f} | {r['backward_ms']:.0f} | {r['optimizer_ms']:.1f} | "
            f"{adds:.1f} | {r['pruner_overhead']:.3f} | {r['realized_speedup']:.2f} | "
            f"{r['flops_speedup']:.2f} | {r['efficiency']:.2f} |" + model(r))
    lines += ["",
              "| width | FLOPs ratio | activity | live mask | regularizer | noise | prune event "
              "(cut) | eval death check (512 images) | evaluation per 1000 images | data |" + head,
              "|---|---|---|---|---|---|---|---|---|---|" + rule]
    for r in rows:
        lines.append(
            f"| {r['width']:g} | {r['flops_ratio']:.3f} | {r['activity_ms']:.1f} | "
            f"{r['live_mask_ms']:.1f} | {r['regularizer_ms']:.2f} | {r['noise_ms']:.1f} | "
            f"{r['cut_ms']:.0f} | {r['death_check_512_ms']:.0f} | "
            f"{r['eval_per_1000_ms']:.0f} | {r['data_ms']:.1f} |" + model(r))
    return lines


def render(path):
    with open(path) as f:
        record = json.load(f)
    if "benchmarks" in record:
        lines, about = benchmark_lines(record), record["context"]
    elif "rows" in record:
        lines, about = profile_lines(record), record.get("record", {})
    else:
        raise SystemExit(f"bench_table: {path} is neither Google Benchmark's JSON nor a step "
                         "profile")
    missing = [k for k in ("command", "commit", "machine", "threads") if k not in about]
    if missing:
        raise SystemExit(f"bench_table: {path} lacks {', '.join(missing)}")
    lines += ["", f"`{about['command']}` at commit `{about['commit']}`; {about['machine']}; "
              f"{about['threads']} threads ([record](data/{os.path.basename(path)}))."]
    return lines


def check(doc, paths):
    status = 0
    for path in paths:
        status |= check_section(doc, os.path.basename(path), render(path), "bench_table")
    return status


def main(argv):
    if len(argv) >= 2 and argv[0] == "render":
        for path in argv[1:]:
            print("\n".join(render(path)))
        return 0
    if len(argv) >= 3 and argv[0] == "check":
        return check(argv[1], argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
