#!/usr/bin/env python3
"""bench/latmerge.py QFILE... : p50 and p99 (ms) of several check-in runs together.

Each QFILE is what `loadgen checkin` writes (its QFILE argument): "requests N",
then "permille microseconds" for 1..1000. Run i's share of requests below a
latency x is n_i * F_i(x), F_i read off its quantiles (to 0.1%); the merged
p-quantile is the smallest latency any run reported at which the shares sum
to p of all requests. Prints "p50_ms P99_ms"."""
import bisect
import sys


def load(path):
    with open(path) as f:
        n = int(f.readline().split()[1])
        q = [int(line.split()[1]) for line in f]
    return n, q


def share_at(n, q, x):
    # permilles whose quantile is <= x (q is non-decreasing), as a fraction
    return n * bisect.bisect_right(q, x) / 1000.0


def quantile(runs, p):
    total = sum(n for n, _ in runs)
    for x in sorted({v for _, q in runs for v in q}):
        if sum(share_at(n, q, x) for n, q in runs) >= p * total - 1e-9:
            return x
    return max(v for _, q in runs for v in q)


def main():
    runs = [load(p) for p in sys.argv[1:]]
    print("%.3f %.3f" % (quantile(runs, 0.50) / 1000.0, quantile(runs, 0.99) / 1000.0))


main()
