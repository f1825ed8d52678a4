#!/usr/bin/env python3
"""What one activation element costs in FLOPs on this machine: the element_flops of
"pressure": "time", fitted from step times that bench_step_profile measured.

    ./build/bench/bench_step_profile --widths 0.5 --ratios 1,0.45,0.25,0.15 --width-multiple 8 \\
        --threads 2 --out prof.json [--models RUN/model_final.pt,...]
    python3 tools/element_cost.py prof.json [more.json ...]

Fits bare step time = a * FLOPs + b * activation elements (both per sample, as the profile
writes them; no constant term: an empty network takes no time) by least squares over every row,
and prints b / a, with each row's measured and fitted time. Rows of different widths, devices
or batch sizes should not be mixed: a and b are per machine and per batch.
"""
import json
import sys


SETTINGS = ("device", "batch", "threads", "channels_last")


def rows_of(paths):
    """(label, FLOPs, elements, step ms) of every row; one machine setting for all of them."""
    rows, settings = [], None
    for path in paths:
        try:
            with open(path) as file:
                profile = json.load(file)
            these = {key: profile.get(key) for key in SETTINGS}
            widths = {row["width"] for row in profile["rows"]}
            if settings is None:
                settings = (these, widths)
            elif (these, widths) != settings:
                sys.exit(f"{path}: profiled with {these}, widths {sorted(widths)}; the first file "
                         f"with {settings[0]}, widths {sorted(settings[1])}: a fit needs one")
            if len(widths) > 1:
                sys.exit(f"{path}: rows of several widths {sorted(widths)}: profile one width")
            for row in profile["rows"]:
                if "flops" not in row or "activation_elements" not in row:
                    sys.exit(f"{path}: rows lack flops / activation_elements "
                             "(written by bench_step_profile since the time pressure)")
                label = f"{row['model']} ({row['flops_ratio']:.3f})"
                rows.append((label, float(row["flops"]), float(row["activation_elements"]),
                             float(row["bare_step_ms"])))
        except OSError as error:
            sys.exit(f"{path}: {error.strerror}")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            sys.exit(f"{path}: not a bench_step_profile JSON ({type(error).__name__}: {error})")
    return rows


def fit(rows):
    """Least squares of t = a*f + b*e, from the 2x2 normal equations."""
    ff = sum(f * f for _, f, _, _ in rows)
    fe = sum(f * e for _, f, e, _ in rows)
    ee = sum(e * e for _, _, e, _ in rows)
    ft = sum(f * t for _, f, _, t in rows)
    et = sum(e * t for _, _, e, t in rows)
    det = ff * ee - fe * fe
    # Relative: FLOPs and elements in (nearly) fixed proportion leave a rounding-sized determinant.
    if len(rows) < 2 or det <= 1e-9 * ff * ee:
        sys.exit("need at least two rows whose FLOPs and elements are not in proportion")
    return (ee * ft - fe * et) / det, (ff * et - fe * ft) / det


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = rows_of(sys.argv[1:])
    a, b = fit(rows)
    print("| model (FLOPs ratio) | FLOPs (M) | activation elements (k) | step (ms) | fitted (ms) |")
    print("|---|---|---|---|---|")
    for model, f, e, t in rows:
        print(f"| {model} | {f / 1e6:.1f} | {e / 1e3:.1f} | {t:.0f} | {a * f + b * e:.0f} |")
    if a <= 0.0 or b <= 0.0:
        print(f"\nThe fit is not meaningful (a = {a:.3g} ms per FLOP, b = {b:.3g} ms per "
              "element): profile more shapes.")
        return 1
    print(f"\nelement_flops = {b / a:.0f}  (a = {a * 1e9:.3g} ms per GFLOP, "
          f"b = {b * 1e6:.3g} ms per M elements, {len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
