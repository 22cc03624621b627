#!/usr/bin/env python3
"""Times range queries on several Prometheus-API servers holding the same data (make bench, phase 2).

Every query of --queries (compare.py's format; a "# name: ..." comment names the next query) runs as
/api/v1/query_range with the same start, end and step on every system, --reps times. Systems take
turns: the order rotates with each query and repetition, so none always runs first (cold) or last.
A time is wall clock from sending the request to having read the whole body. nocache=1 is sent
(VictoriaMetrics then neither caches nor aligns; the others ignore it). The first repetition also
checks the answer (status success, series and points counted); an error is recorded and reported.

Usage: query_bench.py --system NAME=URL ... --queries FILE --start S --end E --step 60 --reps 5
                      [--job gen] [--timeout 300] --out results.json
"""
import argparse, json, statistics, sys, time, urllib.error, urllib.parse, urllib.request


def load(path):
    """-> [(name, query)] from compare.py's query file format."""
    out, name = [], None
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln.startswith("# name:"):
                name = ln[len("# name:"):].strip()
            elif ln and not ln.startswith("#"):
                out.append((name or ln, ln)); name = None
    return out


def run(base, query, a):
    """-> (ms, body bytes or None, error or None)."""
    params = {"query": query, "start": a.start, "end": a.end, "step": a.step, "nocache": 1}
    url = f"{base.rstrip('/')}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=a.timeout) as r:
            body = r.read()
        return (time.perf_counter() - t0) * 1e3, body, None
    except urllib.error.HTTPError as e:
        return (time.perf_counter() - t0) * 1e3, None, f"HTTP {e.code}: {e.read()[:300]!r}"
    except (urllib.error.URLError, OSError) as e:
        return (time.perf_counter() - t0) * 1e3, None, f"connection: {e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", action="append", required=True, help="NAME=BASE_URL (repeatable)")
    ap.add_argument("--queries", required=True); ap.add_argument("--job", default="gen")
    ap.add_argument("--start", required=True); ap.add_argument("--end", required=True)
    ap.add_argument("--step", default="60"); ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300); ap.add_argument("--out", required=True)
    a = ap.parse_args()
    systems = [tuple(s.split("=", 1)) for s in a.system]
    queries = [(n, q.replace("$JOB", a.job)) for n, q in load(a.queries)]
    res = [dict(name=n, query=q, ms={s: [] for s, _ in systems}, series={}, points={}, errors={})
           for n, q in queries]
    k = 0
    for rep in range(a.reps):
        for qi, (name, q) in enumerate(queries):
            r = res[qi]
            order = systems[k % len(systems):] + systems[:k % len(systems)]; k += 1
            for s, base in order:
                ms, body, err = run(base, q, a)
                if body is not None and rep == 0:
                    try:
                        d = json.loads(body)
                        if d.get("status") != "success": err = f"status {d.get('status')}: {d.get('error')}"
                        else:
                            r["series"][s] = len(d["data"]["result"])
                            r["points"][s] = sum(len(x.get("values", [])) for x in d["data"]["result"])
                    except (ValueError, KeyError, TypeError) as e:
                        err = f"bad JSON: {e}"
                if err:
                    r["errors"].setdefault(s, err)
                else:
                    r["ms"][s].append(round(ms, 2))
            print(f"rep {rep + 1}/{a.reps} {name:28} " + "  ".join(f"{s} {r['ms'][s][-1] if r['ms'][s] else 'ERR':>9} ms"
                  for s, _ in systems), flush=True)
    for r in res:
        r["median_ms"] = {s: statistics.median(v) for s, v in r["ms"].items() if v}
    with open(a.out, "w") as f:
        json.dump(dict(start=a.start, end=a.end, step=a.step, reps=a.reps, systems=[s for s, _ in systems],
                       queries=res), f, indent=1)
    bad = [(r["name"], s, e) for r in res for s, e in r["errors"].items()]
    for n, s, e in bad:
        print(f"ERROR {s} on {n}: {e}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
