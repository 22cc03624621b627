#!/usr/bin/env python3
"""Samples of the scrape targets' own series that a Prometheus-API server stored in one window.

Usage: window_count.py BASE_URL TIME WINDOW_S [JOB=bench]
Prints: target_samples=N window_scrapes=N (? when the server could not answer).
Only the metric names bench-targets.py serves are counted, so the series each scraper adds (up,
scrape_*; VictoriaMetrics adds one more than Prometheus) do not count: every system that scraped every
target equally often holds the same number, give or take one scrape per target at the window edges.
One query per name: count_over_time over several names fails in Prometheus (dropping __name__ makes
_sum and _count collide).
"""
import json, sys, urllib.parse, urllib.request

NAMES = ["bench_requests_total", "bench_level", "bench_latency_seconds_bucket",
         "bench_latency_seconds_sum", "bench_latency_seconds_count"]


def scalar(base, query, t):
    q = urllib.parse.urlencode({"query": query, "time": t, "nocache": 1})
    with urllib.request.urlopen(f"{base}/api/v1/query?{q}", timeout=300) as r:
        res = json.load(r)["data"]["result"]
    return int(float(res[0]["value"][1])) if res else 0


def main():
    base, t, win = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
    job = sys.argv[4] if len(sys.argv) > 4 else "bench"
    out = {"target_samples": "?", "window_scrapes": "?"}
    try:
        out["target_samples"] = sum(scalar(base, f'sum(count_over_time({n}{{job="{job}"}}[{win}s]))', t) for n in NAMES)
        out["window_scrapes"] = scalar(base, f'sum(count_over_time(up{{job="{job}"}}[{win}s]))', t)
    except Exception as e:  # noqa: BLE001 - reported as "?", which the report treats as a failure
        print(f"window_count: {base}: {e}", file=sys.stderr)
    print(" ".join(f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
