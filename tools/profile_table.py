#!/usr/bin/env python3
"""Markdown tables from bench_step_profile's JSON (--out), for docs/benchmarks.md. Rows of
--models checkpoints name their model in a last column.

    python3 tools/profile_table.py prof.json [more.json ...]
"""
import json
import sys


def main():
    for path in sys.argv[1:]:
        with open(path) as f:
            profile = json.load(f)
        print(f"{path}: device {profile['device']}, batch {profile['batch']}, "
              f"{profile['threads']} threads, width multiple {profile['width_multiple']}, "
              f"median of {profile['steps']} steps\n")
        models = any(r.get("model", "random cuts") != "random cuts" for r in profile["rows"])
        # The model column, only where a row came from --models.
        head = " model |" if models else ""
        rule = "---|" if models else ""
        cell = (lambda r: f" {r.get('model', 'random cuts')} |") if models else (lambda r: "")
        print("| width | FLOPs ratio | step (ms) | forward | backward | optimizer | pruner adds "
              "| overhead | realized speed-up | FLOPs speed-up | efficiency |" + head)
        print("|---|---|---|---|---|---|---|---|---|---|---|" + rule)
        for r in profile["rows"]:
            adds = r["activity_ms"] + r["live_mask_ms"] + r["regularizer_ms"] + r["noise_ms"]
            print(f"| {r['width']:g} | {r['flops_ratio']:.3f} | {r['bare_step_ms']:.0f} | "
                  f"{r['forward_ms']:.0f} | {r['backward_ms']:.0f} | {r['optimizer_ms']:.1f} | "
                  f"{adds:.1f} | {r['pruner_overhead']:.3f} | {r['realized_speedup']:.2f} | "
                  f"{r['flops_speedup']:.2f} | {r['efficiency']:.2f} |" + cell(r))
        print()
        print("| width | FLOPs ratio | activity | live mask | regularizer | noise | prune event "
              "(cut) | eval death check (512 images) | evaluation per 1000 images | data |" + head)
        print("|---|---|---|---|---|---|---|---|---|---|" + rule)
        for r in profile["rows"]:
            print(f"| {r['width']:g} | {r['flops_ratio']:.3f} | {r['activity_ms']:.1f} | "
                  f"{r['live_mask_ms']:.1f} | {r['regularizer_ms']:.2f} | {r['noise_ms']:.1f} | "
                  f"{r['cut_ms']:.0f} | {r['death_check_512_ms']:.0f} | "
                  f"{r['eval_per_1000_ms']:.0f} | {r['data_ms']:.1f} |" + cell(r))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
