#!/usr/bin/env python3
"""Where a pruned ResNet-18 (the example's CIFAR variant) keeps its cost, per stage, from the
per-layer widths of a run's summary.json (or an export's model.json).

    python3 tools/stage_costs.py runs/a/summary.json [more ...]

Per stage (the stem counts with layer1, at 32x32): the share of the convolution FLOPs before
and after pruning, and what is left of the FLOPs and of the activation elements (output
channels x map size, summed over convolutions: what BatchNorm, ReLU, residual adds and the
activations kept for backward scale with). A cut in a high-resolution stage removes more of
the second per unit of the first; memory-bound work follows the second.
"""
import json
import sys

MAP = {1: 32 * 32, 2: 16 * 16, 3: 8 * 8, 4: 4 * 4}


def convolutions(width):
    """(stage, in, out, kernel, map size) of every convolution, from {layer name: width}."""
    layers = [(1, 3, width["stem"], 3, MAP[1])]
    previous = width["stem"]
    for stage in (1, 2, 3, 4):
        for block in (0, 1):
            prefix = f"layer{stage}_{block}."
            conv1, conv2 = width[prefix + "conv1"], width[prefix + "conv2"]
            layers.append((stage, previous, conv1, 3, MAP[stage]))
            layers.append((stage, conv1, conv2, 3, MAP[stage]))
            if prefix + "projection" in width:
                layers.append((stage, previous, width[prefix + "projection"], 1, MAP[stage]))
            previous = width.get(prefix + "selection", width.get(prefix + "projection", conv2))
    return layers


def totals(layers):
    per_stage = {}
    for stage, c_in, c_out, k, size in layers:
        flops, elements = per_stage.get(stage, (0, 0))
        per_stage[stage] = (flops + c_in * c_out * k * k * size, elements + c_out * size)
    return per_stage


def main():
    for path in sys.argv[1:]:
        widths = json.load(open(path))["widths"]
        dense = totals(convolutions({w["layer"]: w["initial"] for w in widths}))
        pruned = totals(convolutions({w["layer"]: w["live"] for w in widths}))
        dense_flops = sum(f for f, _ in dense.values())
        pruned_flops = sum(f for f, _ in pruned.values())
        dense_elements = sum(e for _, e in dense.values())
        pruned_elements = sum(e for _, e in pruned.values())
        print(f"{path}: convolution FLOPs {pruned_flops / dense_flops:.3f} of dense, "
              f"activation elements {pruned_elements / dense_elements:.3f}\n")
        print("| stage | FLOPs share, dense | FLOPs share, pruned | FLOPs left | elements left |")
        print("|---|---|---|---|---|")
        for stage in sorted(dense):
            print(f"| layer{stage} | {dense[stage][0] / dense_flops:.2f} | "
                  f"{pruned[stage][0] / pruned_flops:.2f} | "
                  f"{pruned[stage][0] / dense[stage][0]:.2f} | "
                  f"{pruned[stage][1] / dense[stage][1]:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
