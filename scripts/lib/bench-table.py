#!/usr/bin/env python3
"""Prints scripts/bench's table from the JSON files `parity bench --json` wrote: off-R.json and full-R.json per
repetition R. Step times are the median over repetitions of each run's median step; ratios are taken within each
repetition (against the first backend, or full against off) and then their median is printed, so a load change between
repetitions does not enter a ratio. The range after each figure is the smallest and largest repetition."""
import json
import os
import statistics
import sys


def load(directory, capture, rep):
    return {r["backend"]: r for r in json.load(open(os.path.join(directory, f"{capture}-{rep}.json")))}


def main(directory, reps):
    runs = {c: [load(directory, c, r) for r in range(1, reps + 1)] for c in ("off", "full")}
    backends = [r["backend"] for r in json.load(open(os.path.join(directory, "off-1.json")))]
    first = backends[0]

    def figure(values, unit):
        values = [v for v in values if v is not None]
        if not values:
            return "error"
        text = f"{statistics.median(values):.2f}{unit}"
        return text + (f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else "")

    def ms(capture, backend, key="medianMs"):
        return [run[backend][key] if run[backend]["error"] is None and run[backend].get(key) is not None else None for run in runs[capture]]

    def ratio(numerators, denominators):
        return [n / d if n is not None and d is not None else None for n, d in zip(numerators, denominators)]

    for r in range(reps):
        for c in ("off", "full"):
            print(f"  repetition {r + 1}, capture {c}: " + ", ".join(
                f"{b} {runs[c][r][b]['medianMs']:.2f} ms" if runs[c][r][b]["error"] is None else f"{b} error" for b in backends))

    def table(title, key):
        header = ["backend", "capture off, ms", "capture full, ms", "capture overhead (full/off)", f"off / {first}", f"full / {first}"]
        rows = []
        for b in backends:
            off, full = ms("off", b, key), ms("full", b, key)
            rows.append([b, figure(off, ""), figure(full, ""), figure(ratio(full, off), "x"),
                         figure(ratio(off, ms("off", first, key)), "x"), figure(ratio(full, ms("full", first, key)), "x")])
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        print(f"{title}, median of {reps} repetitions (smallest-largest repetition in brackets):")
        for row in [header] + rows:
            print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))

    table("wall time per step", "medianMs")
    # CPU time of the bench process (every thread) per step: what a step costs without the wait for a core on a shared
    # machine. A worker backend computes in its own process, so for it this counts only the exchange.
    table("CPU time per step (this process; a worker's own compute not included)", "cpuMedianMs")
    print_trace(runs, backends, reps)
    errors = {b: run[b]["error"] for c in runs for run in runs[c] for b in backends if run[b]["error"] is not None}
    for b, e in errors.items():
        print(f"  {b}: {e}")
    return 1 if errors else 0


def print_trace(runs, backends, reps):
    """With scripts/bench --trace: the full-capture runs also wrote a trace; its size and the comparer's read speed."""
    if not any(run[b].get("trace") for run in runs["full"] for b in backends):
        return
    print(f"trace written by the capture-full runs, median of {reps} repetitions (smallest-largest in brackets):")
    for b in backends:
        figures = [run[b]["trace"] for run in runs["full"] if run[b].get("trace")]
        if not figures:
            continue

        def median(key, scale=1.0, digits=2):
            values = [f[key] * scale for f in figures]
            text = f"{statistics.median(values):.{digits}f}"
            return text + (f" ({min(values):.{digits}f}-{max(values):.{digits}f})" if len(values) > 1 else "")

        print(f"  {b}: {median('bytesPerStep', 1e-6)} MB a step, values / stored x{median('compressionRatio')}, "
              f"comparer reads {median('readMBps', 1.0, 0)} MB/s, final flush {median('drainMs', 1.0, 1)} ms, "
              f"hand-over {median('handOverMs')} ms a step (in the full step time)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
