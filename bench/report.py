#!/usr/bin/env python3
"""Runs every benchmark of issue 6 and writes the raw figures (JSON) and
docs/BENCHMARKS.md. Called by scripts/bench, which builds first.

Every figure is a ratio against a baseline measured in the same run, with the
median over repetitions and the spread (min..max). --quick runs fewer, shorter
repetitions and fails (exit 1) only on gross regressions: a figure worse than
twice its target, never on noise.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def summary(values):
    values = sorted(values)
    return {"median": statistics.median(values), "min": values[0], "max": values[-1],
            "n": len(values)}


def run_json(argv, timeout=1800):
    log(" ".join(argv))
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, timeout=timeout, text=True)
    return json.loads(out.stdout)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, text=True).stdout.strip() != ""
    return {"cpu": model, "cpus": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "commit": commit + ("-dirty" if dirty else ""),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_before": loadavg()}


# --- tallyd and tally-collector as children ---------------------------------

class Proc:
    """A child process, killed and reaped on exit of the with-block."""

    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, **kw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_collector(build, workdir):
    db = os.path.join(workdir, "collector.db")
    c = Proc([f"{build}/userspace/collector/tally-collector", "--listen", "127.0.0.1:0",
              "--db", db, "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    line = c.p.stdout.readline()
    m = re.match(r"listening on ([0-9.]+:[0-9]+)", line)
    if not m:
        raise RuntimeError(f"tally-collector did not start: {line!r}")
    return c, f"http://{m.group(1)}/v1/batches"


def tallyd_argv(build, workdir, interval, endpoint=None):
    argv = [f"{build}/userspace/agent/tallyd", "--backend", "bpf", "--interval", str(interval),
            "--outbox", os.path.join(workdir, "outbox.db"),
            "--socket", os.path.join(workdir, "tally.sock"), "--log-level", "warning"]
    if endpoint:
        argv += ["--endpoint", endpoint]
    return argv


def wait_for_socket(path, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise RuntimeError("tallyd exited during start-up")
        time.sleep(0.05)
    raise RuntimeError("tallyd did not open its control socket")


def start_farm(build, processes, threads, busy, period_ms=100, burn_us=100):
    farm = Proc([f"{build}/bench/task_farm", "--processes", str(processes), "--threads",
                 str(threads), "--busy", str(busy), "--period-ms", str(period_ms),
                 "--burn-us", str(burn_us)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True)
    line = farm.p.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError("task_farm did not start")
    return farm


# --- rows -------------------------------------------------------------------

def row_switch_cost(build, quick):
    rounds, trips = (3, 50000) if quick else (9, 200000)
    return run_json([f"{build}/bench/bpf_switch_cost", "--rounds", str(rounds),
                     "--round-trips", str(trips)])


def sched_pipe_usecs(loops):
    out = subprocess.run(["taskset", "-c", "1", "perf", "bench", "sched", "pipe", "-l",
                          str(loops)], check=True, stdout=subprocess.PIPE, text=True).stdout
    return float(re.search(r"([0-9.]+) usecs/op", out).group(1))


def row_storm(build, quick):
    """perf bench sched pipe pinned to one CPU, without and with tallyd
    attached, in rotating order, BPF stats off. Many short turns rather than
    a few long ones: a burst of load from elsewhere then spoils one pair, and
    the median of the paired slowdowns ignores it. Each tallyd is left to
    finish starting (BTF parsing, its first scan of /proc) until it uses no
    CPU for half a second before the measurement: the row is about the
    steady per-switch cost.
    A third arm attaches only an empty sched_switch program: the floor that
    any BPF program on this tracepoint pays for being called at all."""
    # Pairs vary by tens of percent on a shared VM: the median of many is
    # what can tell a few percent apart.
    rounds, loops = (5, 100000) if quick else (61, 100000)
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats = f.read().strip()

    def measure(arm):
        if arm == "none":
            return sched_pipe_usecs(loops)
        if arm == "empty":
            with Proc([f"{build}/bench/bpf_switch_cost", "--hold-empty"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True) as e:
                if e.p.stdout.readline().strip() != "ready":
                    raise RuntimeError("bpf_switch_cost --hold-empty did not attach")
                usecs = sched_pipe_usecs(loops)
                e.p.stdin.close()
                return usecs
        with tempfile.TemporaryDirectory(prefix="tally-bench-") as wd:
            with Proc(tallyd_argv(build, wd, 60), stderr=subprocess.DEVNULL) as t:
                wait_for_socket(os.path.join(wd, "tally.sock"), t.p)
                wait_until_idle(t.p.pid)
                return sched_pipe_usecs(loops)

    arms = ["none", "tally", "empty"]
    got = {a: [] for a in arms}
    slowdown, empty_slowdown = [], []
    for r in range(rounds):
        turn = {}
        for i in range(len(arms)):
            arm = arms[(i + r) % len(arms)]  # rotating order
            turn[arm] = measure(arm)
            got[arm].append(turn[arm])
        slowdown.append(turn["tally"] / turn["none"] - 1)
        empty_slowdown.append(turn["empty"] / turn["none"] - 1)
    # The target's figure: what tallyd adds over the empty program, which any
    # program on the tracepoint pays for being called, in the same round.
    above_empty = [t - e for t, e in zip(slowdown, empty_slowdown)]
    return {"loops": loops, "bpf_stats_enabled": stats,
            "usecs_per_op_without": summary(got["none"]),
            "usecs_per_op_with": summary(got["tally"]),
            "usecs_per_op_empty_program": summary(got["empty"]),
            "slowdown": summary(slowdown), "empty_program_slowdown": summary(empty_slowdown),
            "slowdown_above_empty": summary(above_empty)}


def row_sampler(build, quick):
    if quick:
        return run_json([f"{build}/bench/sampler_cost", "--tasks", "100,10000", "--rounds", "3",
                         "--interval-ms", "500"])
    return run_json([f"{build}/bench/sampler_cost", "--tasks", "100,1000,10000", "--rounds", "9",
                     "--interval-ms", "1000"])


def read_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    kib = lambda k: int(fields.get(k, "0 kB").split()[0])
    return {k: kib(k) for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")}


def read_pss_kib(pid):
    """Proportional set size: shared pages divided among the processes mapping them."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def libcurl_floor(build, url):
    """RSS of a plain C process that links only libcurl and has made one POST."""
    with Proc([f"{build}/bench/libcurl_floor", url], stdout=subprocess.PIPE, text=True) as c:
        if c.p.stdout.readline().strip() != "ready":
            raise RuntimeError("libcurl_floor did not start")
        return read_status(c.p.pid)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, (14) and (15)


def wait_until_idle(pid, quiet_polls=5, poll_s=0.1, at_most_s=10):
    """Until the process has used no CPU for quiet_polls polls in a row: a
    tallyd that just started is still parsing BTF, scanning /proc and taking
    back the pages it handed back, none of which is the steady state the
    storm row measures. At the 60 s default it then sleeps until its first
    interval."""
    deadline = time.time() + at_most_s
    last, quiet = cpu_ticks(pid), 0
    while quiet < quiet_polls and time.time() < deadline:
        time.sleep(poll_s)
        now = cpu_ticks(pid)
        quiet = quiet + 1 if now == last else 0
        last = now


def start_up_pages_kib(log_path):
    """What tallyd said it handed back at the end of start-up (its debug log)."""
    with open(log_path) as f:
        m = re.search(r"gave back (\d+) KiB of start-up pages", f.read())
    return int(m.group(1)) if m else None


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7])  # minflt, (10)


def timeslices(pid):
    """Times any thread of pid was switched in (third field of schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[2])
        except OSError:
            pass
    return total


def row_footprint(build, quick):
    """A real tallyd shipping to a real tally-collector, with 1,000 processes
    that are all active in every interval."""
    hz = os.sysconf("SC_CLK_TCK")
    warmup, window, idle_window = (4, 10, 10) if quick else (5, 40, 30)
    out = {}
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as wd:
        collector, url = start_collector(build, wd)
        with collector, start_farm(build, 1000, 1, 1000, period_ms=500, burn_us=20):
            log_path = os.path.join(wd, "tallyd.log")
            argv = tallyd_argv(build, wd, 1, url)
            argv[argv.index("--log-level") + 1] = "debug"  # for the start-up pages line
            with open(log_path, "w") as log, Proc(argv, stderr=log) as t:
                wait_for_socket(os.path.join(wd, "tally.sock"), t.p)
                time.sleep(warmup)
                c0, t0, m0 = cpu_ticks(t.p.pid), time.time(), minor_faults(t.p.pid)
                rss, pss = [], []
                for _ in range(window):
                    time.sleep(1)
                    rss.append(read_status(t.p.pid))
                    pss.append(read_pss_kib(t.p.pid))
                c1, t1, m1 = cpu_ticks(t.p.pid), time.time(), minor_faults(t.p.pid)
            floor = libcurl_floor(build, url)
        cpu_per_interval = (c1 - c0) / hz / (t1 - t0)  # seconds of CPU per 1 s interval
        out["busy"] = {
            "processes": 1000, "interval_s": 1, "seconds": round(t1 - t0, 1),
            "cpu_seconds_per_interval": cpu_per_interval,
            "cpu_share_at_1s": cpu_per_interval,
            "rss_kib": summary([s["VmRSS"] for s in rss]),
            "hwm_kib": max(s["VmHWM"] for s in rss),
            "anon_kib": summary([s["RssAnon"] for s in rss]),
            "file_kib": summary([s["RssFile"] for s in rss]),
            "pss_kib": summary(pss),
            "start_up_pages_kib": start_up_pages_kib(log_path),
            "minor_faults_per_interval": (m1 - m0) / (t1 - t0),
            "libcurl_floor_kib": floor}
    # Idle: the default 60 s interval, measured between two samples.
    with tempfile.TemporaryDirectory(prefix="tally-bench-") as wd:
        collector, url = start_collector(build, wd)
        with collector, Proc(tallyd_argv(build, wd, 60, url), stderr=subprocess.DEVNULL) as t:
            wait_for_socket(os.path.join(wd, "tally.sock"), t.p)
            time.sleep(3)
            c0, s0, t0 = cpu_ticks(t.p.pid), timeslices(t.p.pid), time.time()
            time.sleep(idle_window)
            c1, s1, t1 = cpu_ticks(t.p.pid), timeslices(t.p.pid), time.time()
            out["idle"] = {"interval_s": 60, "seconds": round(t1 - t0, 1),
                           "wakeups_per_second": (s1 - s0) / (t1 - t0),
                           "cpu_share": (c1 - c0) / hz / (t1 - t0),
                           "rss_kib": read_status(t.p.pid)}
    out["cpu_share_at_60s"] = out["busy"]["cpu_seconds_per_interval"] / 60 + out["idle"]["cpu_share"]
    return out


def row_outbox(build, quick):
    # Start from a clean page cache: dirty data other programs left (a build
    # that just ran) would be written out inside our fsyncs.
    os.sync()
    reps = 5 if quick else 9
    data = run_json([f"{build}/bench/outbox_bench", f"--benchmark_repetitions={reps}",
                     "--benchmark_enable_random_interleaving=true",
                     "--benchmark_filter=BM_FsyncFloor|BM_Append1000|BM_AppendOne|"
                     "BM_WriteFsyncInterval|BM_SqliteCommit|BM_Append1000Json|BM_Encode|"
                     "BM_SqliteCommitAppendBytes",
                     "--benchmark_min_time=0.5" if not quick else "--benchmark_min_time=0.2",
                     "--benchmark_format=json"])
    runs, counters = {}, {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"].removesuffix("/real_time")
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        runs.setdefault(name, []).append(b["real_time"] * scale)
        if "stored_bytes_per_sample" in b:
            counters["stored_bytes_per_sample"] = b["stored_bytes_per_sample"]
    floor = statistics.median(runs["BM_FsyncFloor"])

    def over_floor(name):
        return statistics.median(runs[name]) / floor

    return {"unit": "us",
            "times": {k: summary(v) for k, v in runs.items()},
            "append_over_floor": over_floor("BM_Append1000"),
            "append_over_floor_spread": [min(runs["BM_Append1000"]) / max(runs["BM_FsyncFloor"]),
                                         max(runs["BM_Append1000"]) / min(runs["BM_FsyncFloor"])],
            # The target's figure: the append against a bare SQLite commit of
            # the same bytes, the floor of an outbox kept in SQLite.
            "append_over_sqlite_commit": statistics.median(runs["BM_Append1000"]) /
            statistics.median(runs["BM_SqliteCommitAppendBytes"]),
            "append_over_sqlite_commit_spread": [
                min(runs["BM_Append1000"]) / max(runs["BM_SqliteCommitAppendBytes"]),
                max(runs["BM_Append1000"]) / min(runs["BM_SqliteCommitAppendBytes"])],
            "interval_write_over_floor": over_floor("BM_WriteFsyncInterval"),
            "append_one_over_floor": over_floor("BM_AppendOne"),
            "sqlite_commit_over_floor": {n.split("/")[1]: over_floor(n) for n in runs
                                         if n.startswith("BM_SqliteCommit/")},
            "json_append_over_floor": over_floor("BM_Append1000Json"),
            "stored_bytes_per_sample": counters.get("stored_bytes_per_sample"),
            "encode_us": {"json": statistics.median(runs["BM_EncodeJson1000"]),
                          "compact": statistics.median(runs["BM_EncodeCompact1000"])}}


def row_sink_encode(build, quick):
    # Both paths of each format in one process, interleaved: the ratio is
    # what holds from machine to machine.
    reps = 5 if quick else 9
    data = run_json([f"{build}/bench/sink_encode_bench", f"--benchmark_repetitions={reps}",
                     "--benchmark_enable_random_interleaving=true",
                     "--benchmark_min_time=0.2" if quick else "--benchmark_min_time=0.5",
                     "--benchmark_format=json"])
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        runs.setdefault(b["run_name"], []).append(b["real_time"] * scale)
    body_bytes = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration" and "body_bytes" in b:
            body_bytes[b["run_name"]] = int(b["body_bytes"])
    out = {"unit": "us", "times": {k: summary(v) for k, v in runs.items()}, "speedup": {}}
    for fmt_name, label in (("Influx", "influx"), ("Otlp", "otlp")):
        before = statistics.median(runs[f"BM_{fmt_name}ViaJsonLines1000"])
        after = statistics.median(runs[f"BM_{fmt_name}FromSamples1000"])
        out["speedup"][label] = {"via_json_lines_us": before, "from_samples_us": after,
                                 "ratio": before / after}
    # Remote write and processes = "top", against influx from samples (the
    # cheapest format) in the same run.
    base = statistics.median(runs["BM_InfluxFromSamples1000"])
    out["series_formats"] = {}
    for run, label in (("BM_InfluxFromSamples1000", "influx, all"),
                       ("BM_InfluxTop1000", "influx, top 20"),
                       ("BM_RemoteWriteFromSamples1000", "remote_write, all"),
                       ("BM_RemoteWriteTop1000", "remote_write, top 20")):
        t = statistics.median(runs[run])
        out["series_formats"][label] = {"us": t, "ratio_to_influx_all": t / base,
                                        "body_bytes": body_bytes.get(run, 0)}
    snappy = [b for b in data["benchmarks"]
                            if b.get("run_name") == "BM_SnappyOfRemoteWriteBody"
                            and b.get("run_type") == "iteration"]
    if snappy:
        out["snappy"] = {"us": statistics.median(runs["BM_SnappyOfRemoteWriteBody"]),
                         "body_bytes": int(snappy[0]["body_bytes"]),
                         "compressed_bytes": int(snappy[0]["compressed_bytes"])}
    return out


def row_wire(build, quick):
    return run_json([f"{build}/bench/wire_bytes", "--intervals", "5" if quick else "20"])


def row_drain(build, quick):
    return run_json([f"{build}/bench/drain_bench", "--batches", "144" if quick else "1440"])


def row_ingest(build, quick):
    """tally-collector against the baseline build scripts/bench makes
    (TALLY_BASELINE_COLLECTOR), on the same pre-encoded fleet, arms
    alternated. Quick mode (CI) measures this collector alone."""
    argv = [f"{build}/bench/collector_ingest", "--intervals", "40" if quick else "150",
            "--repetitions", "1" if quick else "3"]
    baseline = os.environ.get("TALLY_BASELINE_COLLECTOR")
    if baseline and not quick:
        argv += ["--baseline", baseline]
    return run_json(argv)


def row_storage(build, quick):
    """Bytes per stored sample at steady state: four hosts for 24 hours
    (quick: 8), database file plus WAL, after the collector has summed the
    rollups. The WAL stays at a few MiB however much the database holds
    (the checkpointer starts it over), so short runs measure mostly the
    WAL: 8 hours gave 21 bytes per sample where 24 give 14.7."""
    return run_json([f"{build}/bench/collector_ingest", "--intervals", "480" if quick else "1440",
                     "--repetitions", "1"])


def row_series(build, quick):
    """The fleet view's queries over 24 hours of a 100-host fleet's rollups
    (what /v1/series and /v1/top read past the raw window), each against a
    SELECT count(*) over the same rows by the same key."""
    return run_json([f"{build}/bench/series_bench", "--repetitions", "3" if quick else "7"])


# --- targets ----------------------------------------------------------------

def noise_highs(rows):
    """The worst repetition of the figures whose repetitions scatter far more
    than a regression would move them (a shared VM's disk and scheduler)."""
    out = {}
    storm, outbox = rows.get("storm", {}), rows.get("outbox", {})
    if "slowdown_above_empty" in storm:
        out["storm: tallyd above the empty program, points"] = \
            storm["slowdown_above_empty"]["max"] * 100
    if "append_over_sqlite_commit_spread" in outbox:
        out["outbox: append / bare SQLite commit of its bytes"] = \
            outbox["append_over_sqlite_commit_spread"][1]
    return out


def checks(r, recorded, recorded_noise=None):
    """(name, value, target, ok, gross) per target. Gross: twice as bad as the
    target, or, for a target the committed full run already misses
    (docs/benchmarks.json), twice as bad as that run's figure: CI catches
    regressions, not the known misses BENCHMARKS.md explains. For the noisy
    figures (noise_highs), twice the worst repetition of that run, so that a
    slow moment of a shared disk or CPU never fails CI; a regression of the
    switch program itself is caught by the steadier switch row (BPF run-time
    stats)."""
    recorded_noise = recorded_noise or {}
    out = []

    def add(name, value, target, higher_is_better=False):
        before = max(recorded.get(name, target), recorded_noise.get(name, target))
        if higher_is_better:
            limit = min(target, before) / 2
            out.append((name, value, target, value >= target, value < limit))
        else:
            limit = max(target, before) * 2
            out.append((name, value, target, value <= target, value > limit))

    add("switch: tally / ktime-only", r["switch"]["ratio"]["tally_vs_ktime"]["median"], 1.5)
    add("storm: tallyd above the empty program, points",
        r["storm"]["slowdown_above_empty"]["median"] * 100, 2)
    big = max(r["sampler"]["by_tasks"], key=lambda x: x["tasks"])
    add(f"sampler: procfs / bpf at {big['tasks']} tasks", big["procfs_over_bpf"]["median"], 10,
        higher_is_better=True)
    add("footprint: RSS MiB", r["footprint"]["busy"]["rss_kib"]["max"] / 1024, 16)
    add("footprint: CPU % of a core at 60 s", r["footprint"]["cpu_share_at_60s"] * 100, 0.05)
    add("outbox: append / bare SQLite commit of its bytes",
        r["outbox"]["append_over_sqlite_commit"], 2)
    add("wire: gzip bytes per sample", r["wire"]["versions"]["2"]["gzip_bytes_per_sample"], 40)
    add("drain: 24 h backlog, s", r["drain"]["extrapolated_24h_seconds"], 60)
    ingest = r["ingest"]
    if "ingest_ratio" in ingest:
        add("ingest: tally-collector / schema 4 collector", ingest["ingest_ratio"], 3,
            higher_is_better=True)
    add("ingest: samples/s, 4 clients", ingest["arms"]["tally"]["samples_per_s"]["median"],
        300000, higher_is_better=True)
    add("storage: bytes per stored sample",
        r["storage"]["arms"]["tally"]["bytes_per_sample"]["median"], 16)
    add("series: slowest fleet query over 24 h of 100 hosts, ms", r["series"]["worst_ms"], 100)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="where to write the raw figures")
    ap.add_argument("--markdown", help="where to write BENCHMARKS.md (full run)")
    ap.add_argument("--only", help="comma list of rows to run (debugging)")
    args = ap.parse_args()
    rows = [("switch", row_switch_cost), ("storm", row_storm), ("sampler", row_sampler),
            ("footprint", row_footprint), ("outbox", row_outbox),
            ("sink_encode", row_sink_encode), ("wire", row_wire),
            ("drain", row_drain), ("ingest", row_ingest), ("storage", row_storage),
            ("series", row_series)]
    only = set(args.only.split(",")) if args.only else None
    result = {"mode": "quick" if args.quick else "full", "machine": machine(), "rows": {}}
    for name, fn in rows:
        if only and name not in only:
            continue
        t0 = time.time()
        result["rows"][name] = fn(args.build, args.quick)
        result["rows"][name]["wall_seconds"] = round(time.time() - t0, 1)
        log(f"{name} done in {time.time() - t0:.0f} s")
    result["machine"]["load_after"] = loadavg()
    failed = []
    if not only:
        result["targets"] = []
        recorded = {}
        committed = os.path.join(ROOT, "docs", "benchmarks.json")
        if os.path.exists(committed):
            with open(committed) as f:
                committed_run = json.load(f)
            recorded = {t["name"]: t["value"] for t in committed_run.get("targets", [])}
            recorded_noise = noise_highs(committed_run.get("rows", {}))
        else:
            recorded_noise = {}
        for name, value, target, ok, gross in checks(result["rows"], recorded, recorded_noise):
            result["targets"].append({"name": name, "value": value, "target": target,
                                      "holds": ok, "gross_regression": gross})
            log(f"{'ok  ' if ok else 'MISS'} {name}: {value:.4g} (target {target})")
            if gross:
                failed.append(name)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    if args.markdown:
        import render_markdown
        with open(args.markdown, "w") as f:
            f.write(render_markdown.render(result))
    if failed:
        log("gross regression (worse than twice the target): " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
