"""Collects what scripts/gpu-check.sh left in OUT_DIR into OUT_DIR/gpu-check.json.

    python summarize_check.py OUT_DIR MODE

Reads steps.tsv (step, exit status, milliseconds), ctest.xml (JUnit), bench_*.json (Google
Benchmark), step_profile.json (bench_step_profile) and example_*/summary.json; adds the machine
and the torch build. Standard library only, plus torch for the machine's description.
"""

import json
import os
import platform
import sys
import xml.etree.ElementTree as ElementTree


def machine():
    info = {"host": platform.node(), "cpus": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cudnn"] = torch.backends.cudnn.version()
    except Exception as error:  # the summary is still worth writing
        info["torch_error"] = str(error)
    return info


def steps(out):
    result = {}
    path = os.path.join(out, "steps.tsv")
    if os.path.exists(path):
        for line in open(path):
            name, status, ms = line.rstrip("\n").split("\t")
            result[name] = {"exit_status": int(status), "seconds": round(int(ms) / 1000, 1)}
    return result


def tests(out):
    path = os.path.join(out, "ctest.xml")
    if not os.path.exists(path):
        return None
    counts = {"total": 0, "passed": 0, "failed": 0, "skipped": 0}
    failed = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        counts["total"] += 1
        status = case.get("status", "")
        if case.find("failure") is not None or status == "fail":
            counts["failed"] += 1
            failed.append(case.get("name"))
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    counts["failed_tests"] = failed
    return counts


def benchmarks(out):
    result = {}
    for name in ("bench_engine", "bench_pruner"):
        path = os.path.join(out, name + ".json")
        if not os.path.exists(path):
            continue
        data = json.load(open(path))
        rows = {}
        for b in data.get("benchmarks", []):
            if b.get("error_occurred"):
                rows[b["name"]] = {"skipped": b.get("error_message", "")}
                continue
            row = {"real_time": round(b["real_time"], 3), "unit": b.get("time_unit", "ns")}
            for key, value in b.items():
                if key.endswith("_ms") or key in ("ratio", "units", "units_removed"):
                    row[key] = round(value, 4)
            rows[b["name"]] = row
        result[name] = {"context": data.get("context", {}), "results": rows}
    return result


def step_profile(out):
    path = os.path.join(out, "step_profile.json")
    if not os.path.exists(path):
        return None
    data = json.load(open(path))
    keep = ("width", "model", "flops_ratio", "parameters", "bare_step_ms", "pruner_step_ms",
            "pruner_overhead", "realized_speedup", "flops_speedup", "efficiency")
    rows = [{key: row[key] for key in keep if key in row} for row in data.get("rows", [])]
    settings = ("device", "threads", "batch", "steps", "width_multiple", "channels_last")
    return {**{key: data.get(key) for key in settings}, "rows": rows}


def examples(out):
    result = {}
    for name in ("example_demp", "example_dense"):
        path = os.path.join(out, name, "summary.json")
        if os.path.exists(path):
            summary = json.load(open(path))
            summary.pop("widths", None)
            result[name] = summary
    demp, dense = result.get("example_demp"), result.get("example_dense")
    if demp and dense and dense.get("train_seconds"):
        result["demp_over_dense_train_time"] = round(
            demp["train_seconds"] / dense["train_seconds"], 3)
    return result


def main():
    out, mode = sys.argv[1], sys.argv[2]
    report = {
        "mode": mode,
        "machine": machine(),
        "steps": steps(out),
        "tests": tests(out),
        "benchmarks": benchmarks(out),
        "step_profile": step_profile(out),
        "examples": examples(out),
    }
    with open(os.path.join(out, "gpu-check.json"), "w") as f:
        json.dump(report, f, indent=2)
    tests_now = report["tests"] or {}
    print("gpu-check: tests passed {passed}, failed {failed}, skipped {skipped} of {total}".format(
        **{k: tests_now.get(k, "?") for k in ("passed", "failed", "skipped", "total")}))


if __name__ == "__main__":
    main()
