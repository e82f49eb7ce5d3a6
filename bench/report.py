#!/usr/bin/env python3
"""bench/report.py RESULTS_TXT RESULTS_JSON SMOKE: the table and the JSON.

RESULTS_TXT: one metric a line, tab-separated: name, value, baseline,
target, kind (ratio_min, ratio_max, min, max, info), unit, note."""
import json
import os
import platform
import sys


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release()}


def main():
    src, dst, smoke = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    rows = []
    for line in open(src):
        name, value, base, target, kind, unit, note = line.rstrip("\n").split("\t")
        v = float(value)
        b = float(base) if base else None
        t = float(target) if target else None
        ratio = v / b if b else None
        if kind == "ratio_min":
            ok = ratio is not None and ratio >= t
        elif kind == "ratio_max":
            ok = ratio is not None and ratio <= t
        elif kind == "min":
            ok = v >= t
        elif kind == "max":
            ok = v <= t
        else:
            ok = None
        rows.append({"metric": name, "value": v, "unit": unit, "baseline": b,
                     "ratio": round(ratio, 3) if ratio is not None else None,
                     "target": t, "target_kind": kind,
                     "pass": ok, "note": note})
    out = {"smoke": smoke, "machine": machine(), "metrics": rows}
    with open(dst, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    fmt = "| {:<30} | {:>12} | {:>12} | {:>7} | {:>9} | {:<4} |"
    print(fmt.format("metric", "value", "baseline", "ratio", "target", "pass"))
    print("|" + "|".join("-" * (w + 2) for w in (30, 12, 12, 7, 9, 4)) + "|")
    for r in rows:
        tgt = ""
        if r["target"] is not None:
            sign = ">=" if r["target_kind"].endswith("min") else "<="
            tgt = sign + ("%g" % r["target"]) + ("x" if r["target_kind"].startswith("ratio") else "")
        print(fmt.format(r["metric"], "%.6g %s" % (r["value"], r["unit"]) if len(r["unit"]) < 4 else "%.6g" % r["value"],
                         "%.6g" % r["baseline"] if r["baseline"] is not None else "-",
                         "%.3f" % r["ratio"] if r["ratio"] is not None else "-",
                         tgt, {True: "yes", False: "NO", None: "-"}[r["pass"]]))
    m = out["machine"]
    print("\nmachine: %s CPUs (%s), %s GiB; results: %s" % (m["nproc"], m["cpu"], m["memory_gib"], dst))


main()
