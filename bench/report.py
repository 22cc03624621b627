#!/usr/bin/env python3
"""make bench: turns the phases' raw results into the Markdown report, checks that the harness worked.

Reads WORK/ingest.env (bench/ingest.sh), WORK/query/{query.env,gen.log,queries.json,compare.json}
(bench/query.sh). Prints the report, writes it to --out, and with --benchmarks replaces the part of
BENCHMARKS.md between the "make bench" markers. The last line is machine-readable:
    ratio cpu=0.41 rss=0.38 disk=0.45 query_p50_worst=0.62 answers=identical
Each ratio is Vigil / the better of Prometheus and VictoriaMetrics (lower is better for every figure):
cpu = CPU seconds in the scrape window, rss = peak RSS (VmHWM) at the window's end, disk = bytes per
sample after each system's compaction, query_p50_worst = the largest, over the query set, of Vigil's
median time / the faster peer's median.
Exit 1 when the harness broke (a system stored nothing, stored counts differ by more than one scrape
per target, a query failed or returned nothing, remote write was refused, the answers differ);
never because of a ratio.
"""
import argparse, json, os, platform, re, statistics, subprocess, sys, time

SYS = ["prometheus", "victoria-metrics", "vigil"]
PEERS = SYS[:2]


def env(path):
    out = {}
    if os.path.exists(path):
        for ln in open(path):
            if "=" in ln:
                k, v = ln.rstrip("\n").split("=", 1); out[k] = v
    return out


def num(v):
    try: return float(v)
    except (TypeError, ValueError): return None


def fmt(v, digits=2):
    """A table cell: thousands separated; whole numbers of 100 and more (and digits=0) without decimals."""
    if v is None: return "–"
    if digits == 0 or (float(v).is_integer() and abs(v) >= 100): return f"{round(v):,}"
    return f"{v:,.{digits}f}"


def ratio(vigil, peers):
    peers = [p for p in peers if p is not None and p > 0]
    return vigil / min(peers) if vigil is not None and peers else None


def sh(*cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError): return ""


def machine():
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({model}), {mem / 2**20:.1f} GiB memory, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True); ap.add_argument("--mode", required=True)
    ap.add_argument("--targets", type=int, required=True); ap.add_argument("--series", type=int, required=True)
    ap.add_argument("--window", type=int, required=True); ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--q-series", type=int, required=True); ap.add_argument("--q-span", required=True)
    ap.add_argument("--vigil", required=True, help="the Vigil binary measured")
    ap.add_argument("--repo", required=True); ap.add_argument("--out"); ap.add_argument("--benchmarks")
    a = ap.parse_args()
    ing = env(os.path.join(a.work, "ingest.env"))
    qenv = env(os.path.join(a.work, "query", "query.env"))
    fails = []
    g = lambda s, k: num(ing.get(f"{s}.{k}"))

    commit = sh("git", "-C", a.repo, "rev-parse", "--short", "HEAD") or "unknown"
    dirty = sh("git", "-C", a.repo, "status", "--porcelain", "--untracked-files=no", "--", "server", "app", "Cargo.toml", "Cargo.lock")
    date = time.strftime("%Y-%m-%d", time.gmtime())
    prom_v = (re.search(r"version (\S+)", sh("prometheus", "--version")) or [None, "?"])[1]
    vm_v = sh("dpkg-query", "-W", "-f", "${Version}", "victoria-metrics") or "?"
    L = []
    L.append(f"## make bench ({a.mode}): {date}, commit {commit}")
    L.append("")
    L.append(f"- Machine: {machine()}. Load average {ing.get('loadavg_start', '?')} → {ing.get('loadavg_end', '?')} "
             f"in the scrape window; other processes used {ing.get('others_cpu', '?')} CPU s of it.")
    L.append(f"- Systems: Prometheus {prom_v} and VictoriaMetrics {vm_v} (Debian packages, default flags as "
             f"`../shared/peers` runs them), Vigil `{os.path.relpath(a.vigil, a.repo)}` at {commit}"
             + (" (built from a tree with uncommitted changes by other work in progress)" if dirty else "") + ".")
    L.append("")

    # Phase 1
    L.append(f"### 1. Scrape + ingest: {a.targets} targets × {a.series:,} series every {a.interval} s, "
             f"window {ing.get('window_s', '?')} s, all three at once")
    L.append("")
    L.append("| figure | Prometheus | VictoriaMetrics | Vigil | Vigil / best peer |")
    L.append("|---|---:|---:|---:|---:|")
    rows = {}

    def row(label, vals, digits=2, with_ratio=True):
        r = ratio(vals[2], vals[:2]) if with_ratio else None
        rows[label] = r
        L.append(f"| {label} | " + " | ".join(fmt(v, digits) for v in vals) + f" | {fmt(r) if r is not None else ''} |")

    per = lambda k: [g(s, k) for s in SYS]
    div = lambda x, y: x / y if x is not None and y else None
    row("CPU seconds in the window", per("cpu"))
    row("peak RSS MiB (VmHWM) at window end", per("hwm_mib"), 1)
    row("data dir bytes at window end", per("dir_bytes"), 0)
    row("samples stored (query API, whole run)", per("samples"), 0, False)
    row("series stored", per("series"), 0, False)
    row("bytes/sample, data dir at window end", [div(g(s, "dir_bytes"), g(s, "samples")) for s in SYS])
    row("compacted bytes", per("compact_bytes"), 0)
    row("compacted samples (own count)", per("compact_samples"), 0, False)
    row("**bytes/sample after compaction**", [div(g(s, "compact_bytes"), g(s, "compact_samples")) for s in SYS])
    row("compaction seconds", per("compact_s"), 2, False)
    row("peak RSS MiB incl. compaction", per("hwm_compact_mib"), 1)
    row("targets' samples in the window (equality check)", per("target_samples"), 0, False)
    row("scrapes in the window (samples of `up`)", per("window_scrapes"), 0, False)
    L.append("")
    L.append(f"CPU: utime+stime of each server process over the window. Compaction: Prometheus = snapshot "
             f"(head → block), VictoriaMetrics = `force_merge`, Vigil = snapshot (`POST /api/v1/admin/tsdb/snapshot`, "
             f"head → block); samples from the blocks' meta.json / `vm_rows`. The targets server used "
             f"{ing.get('targets.cpu', '?')} CPU s.")
    L.append("")
    for s in SYS:
        for k in ("samples", "target_samples", "compact_samples"):
            if not (g(s, k) or 0) > 0:
                fails.append(f"phase 1: {s} stored nothing ({k} = {ing.get(f'{s}.{k}', 'missing')})")
    ts = [g(s, "target_samples") for s in SYS]
    if all(v for v in ts) and max(ts) - min(ts) > a.targets * a.series:
        fails.append(f"phase 1: samples stored differ by more than one scrape per target "
                     f"({a.targets} × {a.series:,} = {a.targets * a.series:,}): " + ", ".join(f"{s} {int(v):,}" for s, v in zip(SYS, ts)))

    # Phase 2
    qj = {}
    try: qj = json.load(open(os.path.join(a.work, "query", "queries.json")))
    except (OSError, ValueError) as e: fails.append(f"phase 2: no query results ({e})")
    gen = open(os.path.join(a.work, "query", "gen.log")).read() if os.path.exists(os.path.join(a.work, "query", "gen.log")) else ""
    m = re.search(r"total=(\d+)", gen)
    rw = {}
    for port, s in (("9190", "prometheus"), ("8528", "victoria-metrics"), ("9391", "vigil")):
        mm = re.search(rf"127\.0\.0\.1:{port}/api/v1/write: requests by HTTP status (\{{.*?\}}), (\d+) bytes, ([\d.]+)s", gen)
        if mm: rw[s] = (mm.group(1), float(mm.group(3)))
    if qenv.get("gen_rc") != "0":
        fails.append(f"phase 2: remote write failed (gen-remote-write.py exit {qenv.get('gen_rc', 'missing')})")
    reps = qj.get("reps", "?")
    L.append(f"### 2. Queries: {a.q_series:,} series × {a.q_span} at 15 s "
             f"({int(m.group(1)):,} samples) remote-written identically into each" if m else
             f"### 2. Queries: {a.q_series:,} series × {a.q_span} at 15 s remote-written identically into each")
    L.append("")
    L.append(f"Range queries from {qenv.get('start', '?')} to {qenv.get('end', '?')} step {qenv.get('step', '?')} s, "
             f"systems alternating, median of {reps} runs in ms (request sent → whole body read), "
             f"`nocache=1`; series / points of the answer in brackets.")
    L.append("")
    L.append("| query | Prometheus | VictoriaMetrics | Vigil | Vigil / best peer |")
    L.append("|---|---:|---:|---:|---:|")
    worst = None
    for q in qj.get("queries", []):
        med = q.get("median_ms", {})
        vals = [med.get(s) for s in SYS]
        r = ratio(vals[2], vals[:2])
        worst = r if r is not None and (worst is None or r > worst) else worst
        sp = q.get("series", {}), q.get("points", {})
        cnt = lambda d, s: f"{d[s]:,}" if isinstance(d.get(s), int) else "?"
        cells = [f"{fmt(v, 1)} ({cnt(sp[0], s)} / {cnt(sp[1], s)})" if v is not None else
                 f"error: {q['errors'].get(s, 'no time')}"[:80] for s, v in zip(SYS, vals)]
        L.append(f"| {q['name']}: `{q['query']}` | " + " | ".join(cells) + f" | {fmt(r) if r is not None else '–'} |")
        for s in SYS:
            if s in q.get("errors", {}): fails.append(f"phase 2: {s} failed `{q['name']}`: {q['errors'][s]}")
            elif not q.get("points", {}).get(s): fails.append(f"phase 2: {s} returned no data for `{q['name']}`")
    if qj and qenv.get("query_bench_rc") not in ("0", None):
        fails.append(f"phase 2: query_bench.py exit {qenv.get('query_bench_rc')}")
    if len(rw) == 3:
        vals = [rw[s][1] for s in SYS]
        r = ratio(vals[2], vals[:2])
        L.append(f"| remote write of all samples, seconds (the sender waits for each answer) | "
                 + " | ".join(fmt(v, 1) for v in vals) + f" | {fmt(r)} |")
    hw = [num(qenv.get(f"{n}.hwm_mib")) for n in ("cmp-prometheus", "cmp-victoria-metrics", "q-vigil")]
    L.append(f"| peak RSS MiB after remote write and queries | " + " | ".join(fmt(v, 1) for v in hw)
             + f" | {fmt(ratio(hw[2], hw[:2])) if ratio(hw[2], hw[:2]) else '–'} |")
    L.append("")

    # Phase 3
    cmp_rc = qenv.get("compare_rc")
    answers = "identical" if cmp_rc == "0" else "different"
    L.append("### 3. Answers: Prometheus vs Vigil, `compare.py --rtol 1e-12`, same queries and range")
    L.append("")
    try:
        cj = json.load(open(os.path.join(a.work, "query", "compare.json")))
        res = cj.get("results", cj) if isinstance(cj, dict) else cj
        L.append("| query | verdict | points | bit-identical | within 1e-12 | beyond |")
        L.append("|---|---|---:|---:|---:|---:|")
        names = [q["name"] for q in qj.get("queries", [])]
        for r in res if isinstance(res, list) else []:
            i = r.get("index", -1)
            name = names[i] if 0 <= i < len(names) else str(r.get("query", "?")).replace("$JOB", "gen")
            L.append(f"| {name} | {r.get('verdict', '?')} | {fmt(r.get('points_a'), 0)} | "
                     f"{fmt(r.get('equal'), 0)} | {fmt(r.get('within'), 0)} | {fmt(r.get('beyond'), 0)} |")
    except (OSError, ValueError) as e:
        L.append(f"No compare.json ({e}).")
    L.append("")
    if cmp_rc != "0":
        fails.append(f"phase 3: Vigil's answers differ from Prometheus's (compare.py exit {cmp_rc or 'missing'}); "
                     f"see the compare output above")
    rc_, rr_, rd_ = rows.get("CPU seconds in the window"), rows.get("peak RSS MiB (VmHWM) at window end"), \
        rows.get("**bytes/sample after compaction**")
    two = lambda v: "nan" if v is None else f"{v:.2f}"
    L.append("Aim: every ratio ≤ 0.5. The last line is for scripts; cpu, rss and disk come from phase 1 "
             "(disk = bytes/sample after compaction), query_p50_worst is the worst query of phase 2.")
    L.append("")
    if fails:
        L.append("**HARNESS CHECK FAILED:**")
        L += [f"- {f}" for f in fails]
        L.append("")
    L.append(f"ratio cpu={two(rc_)} rss={two(rr_)} disk={two(rd_)} query_p50_worst={two(worst)} answers={answers}")
    text = "\n".join(L) + "\n"
    print(text, end="")
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        open(a.out, "w").write(text)
        print(f"(written to {a.out})", file=sys.stderr)
    if a.benchmarks and not fails:
        update_benchmarks(a.benchmarks, text)
    sys.exit(1 if fails else 0)


BEGIN, END = "<!-- make bench: begin (bench/report.py replaces this part) -->", "<!-- make bench: end -->"


def update_benchmarks(path, text):
    doc = open(path).read()
    body = BEGIN + "\n\n" + text.replace("## make bench", "### Latest run: make bench", 1).replace("\n### ", "\n#### ") + "\n" + END
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + body + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + body + "\n"
    open(path, "w").write(doc)
    print(f"(updated {path})", file=sys.stderr)


if __name__ == "__main__":
    main()
