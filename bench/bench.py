#!/usr/bin/env python3
"""Cognate benchmark: start-up time, idle RSS, server CPU per operation.

Standard library only. Requests are SigV4-signed here (hmac/hashlib) with the
default development key pair test/test. Run through bench/run.sh, which builds
the release binary; see docs/BENCHMARKS.md for what each figure means.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REGION = "us-east-1"
SERVICE = "cognito-idp"
ACCESS_KEY = "test"
SECRET_KEY = "test"
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"

# Cognate enforces Cognito's quota of 1000 user pools per account, so
# CreateUserPool is measured in batches, each on a fresh server and data dir.
CREATE_BATCH = 800

STACK_MD = "/work/shared/reference/stack.md"
# Server CPU per request from stack.md, "HTTP and storage" (axum 0.8, 2 cores).
REFERENCE = {
    "floor": {"label": "parse JSON + reply (floor)", "low": 16.0, "high": 16.0},
    "read": {"label": "SQLite read by key, rusqlite", "low": 24.0, "high": 36.0},
    "insert": {"label": "SQLite insert, one commit per request (rusqlite)", "low": 95.0, "high": 185.0},
}
GOAL_STARTUP_MS = 100.0
GOAL_RSS_MB = 30.0

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- SigV4 -----------------------------------------------------------------

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_headers(host, op, body, now=None, service=SERVICE, target_prefix=TARGET_PREFIX):
    """Headers of a SigV4-signed JSON 1.1 POST / (Signature Version 4, header form); service
    and target_prefix default to cognito-idp's (cognito-identity: bench/identity.py)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {
        "content-type": CONTENT_TYPE,
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": target_prefix + op,
    }
    names = sorted(headers)
    canonical = "\n".join([
        "POST",
        "/",
        "",
        "".join(f"{n}:{headers[n].strip()}\n" for n in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{day}/{REGION}/{service}/aws4_request"
    to_sign = "\n".join([
        "AWS4-HMAC-SHA256",
        amz_date,
        scope,
        hashlib.sha256(canonical.encode()).hexdigest(),
    ])
    key = _hmac(("AWS4" + SECRET_KEY).encode(), day)
    key = _hmac(key, REGION)
    key = _hmac(key, service)
    key = _hmac(key, "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {
        "Host": host,
        "Content-Type": CONTENT_TYPE,
        "X-Amz-Date": amz_date,
        "X-Amz-Target": target_prefix + op,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        ),
    }
    return out


# --- server process ----------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env():
    # COGNATE_* variables would override the flags' defaults (credentials, log level...).
    return {k: v for k, v in os.environ.items() if not k.startswith("COGNATE_")}


class Server:
    def __init__(self, binary):
        self.tmp = tempfile.TemporaryDirectory(prefix="cognate-bench-")
        self.data_dir = os.path.join(self.tmp.name, "data")  # does not exist yet: empty
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.tmp.name, "server.log"), "wb")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", self.host, "--data-dir", self.data_dir],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=clean_env(),
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout=15.0):
        """Polls GET /health every 1 ms; returns seconds from spawn to the first 200."""
        deadline = self.t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.t0
            except (ConnectionError, OSError, http.client.HTTPException):
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"server not ready after {timeout} s: {self.log_tail()}")
            time.sleep(0.001)

    def log_tail(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime is field 14, stime field 15.
        return int(fields[11]) + int(fields[12])

    def cpu_ns(self):
        """Sum of on-CPU time of the live threads (schedstat, ns): a finer cross-check."""
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def status_kb(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"{field} not in /proc/{self.pid}/status")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


# --- client --------------------------------------------------------------------

class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, server):
        self.server = server
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, op, body, headers):
        self.conn.request("POST", "/", body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{op}: HTTP {resp.status}: {data[:300]!r}")
        if resp.getheader("connection", "").lower() == "close":
            raise RuntimeError(f"{op}: server closed the keep-alive connection")
        return data

    def call(self, op, payload):
        body = json.dumps(payload).encode()
        return json.loads(self.send(op, body, signed_headers(self.server.host, op, body)))

    def close(self):
        self.conn.close()


def presign(host, op, payloads):
    out = []
    for p in payloads:
        body = json.dumps(p).encode()
        out.append((body, signed_headers(host, op, body)))
    return out


def timed_run(client, server, op, requests):
    """Sends the pre-signed requests back to back; returns latencies, wall, server CPU."""
    lat = []
    sys0, me0 = proc_stat_cpu(), os.times()
    ticks0, ns0 = server.cpu_ticks(), server.cpu_ns()
    w0 = time.perf_counter()
    for body, headers in requests:
        t = time.perf_counter()
        client.send(op, body, headers)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - w0
    ticks1, ns1 = server.cpu_ticks(), server.cpu_ns()
    sys1, me1 = proc_stat_cpu(), os.times()
    # CPU used meanwhile by anything but the server and this client: is the machine quiet?
    me = ((me1.user + me1.system) - (me0.user + me0.system)) * CLK_TCK
    other = (sys1[1] - sys0[1]) - (ticks1 - ticks0) - me
    irq, steal = sys1[2] - sys0[2], sys1[3] - sys0[3]
    return lat, wall, ticks1 - ticks0, ns1 - ns0, (max(0.0, other), sys1[0] - sys0[0], irq, steal)


def proc_stat_cpu():
    """(total, user+nice+system, irq+softirq, steal) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[0] + v[1] + v[2], v[5] + v[6], v[7]


def pct(sorted_vals, p):
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def summarize(op, n, rounds, ref_keys):
    """Per round: server CPU per request. Headline: the median round; latency pooled."""
    lat = sorted(x for r in rounds for x in r["lat"])
    per_round = [r["ticks"] / CLK_TCK / n * 1e6 for r in rounds]
    per_round_ns = [r["ns"] / 1000.0 / n for r in rounds]
    cpu_us = statistics.median(per_round)
    total = sum(r["jiffies"] for r in rounds)

    def share(key):
        return round(100.0 * sum(r[key] for r in rounds) / max(1, total), 1)

    res = {
        "op": op,
        "requests_per_round": n,
        "rounds": len(rounds),
        "servers": sum(r["servers"] for r in rounds),
        "server_cpu_us_per_op": round(cpu_us, 1),
        "server_cpu_us_per_op_rounds": [round(x, 1) for x in per_round],
        "tick_resolution_us_per_op": round(1e6 / CLK_TCK / n, 1),
        "server_cpu_us_per_op_schedstat": round(statistics.median(per_round_ns), 1),
        "server_cpu_us_per_op_schedstat_rounds": [round(x, 1) for x in per_round_ns],
        "latency_median_us": round(statistics.median(lat) * 1e6, 1),
        "latency_p99_us": round(pct(lat, 99) * 1e6, 1),
        "throughput_per_s": round(len(lat) / sum(r["wall"] for r in rounds), 1),
        # Share of all cores' time used by other processes during the timed runs.
        "other_processes_cpu_pct": share("other"),
        # Interrupt time meanwhile (network loopback, disk completions), charged to no process.
        "irq_softirq_cpu_pct": share("irq"),
        # Time the hypervisor gave this VM's CPUs to someone else.
        "steal_cpu_pct": share("steal"),
        "vs_reference": {},
    }
    for key in ref_keys:
        ref = REFERENCE[key]
        res["vs_reference"][key] = {
            "reference": ref["label"],
            "reference_us": [ref["low"], ref["high"]],
            # measured / reference; for a range, against its high end then its low end.
            "ratio": [round(cpu_us / ref["high"], 2), round(cpu_us / ref["low"], 2)],
        }
    return res


# --- the benchmarks ------------------------------------------------------------

def bench_startup(binary, runs):
    times = []
    for i in range(runs):
        s = Server(binary)
        try:
            times.append(s.wait_ready())
        finally:
            s.stop()
    ms = [t * 1000 for t in times]
    return {
        "runs": runs,
        "median_ms": round(statistics.median(ms), 1),
        "max_ms": round(max(ms), 1),
        "all_ms": [round(x, 1) for x in ms],
        "goal_ms": GOAL_STARTUP_MS,
    }


def bench_idle_rss(binary):
    s = Server(binary)
    try:
        s.wait_ready()
        c = Client(s)
        c.call("CreateUserPool", {"PoolName": "rss"})
        c.close()
        time.sleep(0.2)
        return {
            "vm_rss_kb": s.status_kb("VmRSS"),
            # /proc reports kB = KiB; MB here is 10^6 bytes, as in the goal.
            "vm_rss_mb": round(s.status_kb("VmRSS") * 1024 / 1e6, 1),
            "vm_hwm_kb": s.status_kb("VmHWM"),
            "threads": len(os.listdir(f"/proc/{s.pid}/task")),
            "goal_mb": GOAL_RSS_MB,
        }
    finally:
        s.stop()


def new_round():
    return {"lat": [], "wall": 0.0, "ticks": 0, "ns": 0, "other": 0.0, "jiffies": 0,
            "irq": 0, "steal": 0, "servers": 0}


def add_run(rnd, server, client, op, reqs):
    lat, wall, ticks, ns, (other, jiffies, irq, steal) = timed_run(client, server, op, reqs)
    rnd["lat"] += lat
    rnd["wall"] += wall
    rnd["ticks"] += ticks
    rnd["ns"] += ns
    rnd["other"] += other
    rnd["jiffies"] += jiffies
    rnd["irq"] += irq
    rnd["steal"] += steal


def round_describe(binary, n, warmup):
    """One server, one pool: warm-up, then n DescribeUserPool."""
    rnd, s = new_round(), Server(binary)
    rnd["servers"] = 1
    try:
        s.wait_ready()
        c = Client(s)
        pool_id = c.call("CreateUserPool", {"PoolName": "p1"})["UserPool"]["Id"]
        payload = {"UserPoolId": pool_id}
        for body, headers in presign(s.host, "DescribeUserPool", [payload] * warmup):
            c.send("DescribeUserPool", body, headers)
        add_run(rnd, s, c, "DescribeUserPool", presign(s.host, "DescribeUserPool", [payload] * n))
        c.close()
    finally:
        s.stop()
    return rnd


def round_create(binary, n, warmup):
    """n CreateUserPool in batches, each on a fresh server (the 1000-pool quota)."""
    rnd, done = new_round(), 0
    while done < n:
        batch = min(CREATE_BATCH, n - done)
        s = Server(binary)
        rnd["servers"] += 1
        try:
            s.wait_ready()
            c = Client(s)
            warm = [{"PoolName": f"warm-{i}"} for i in range(warmup)]
            for body, headers in presign(s.host, "CreateUserPool", warm):
                c.send("CreateUserPool", body, headers)
            reqs = presign(s.host, "CreateUserPool",
                           [{"PoolName": f"bench-{done + i}"} for i in range(batch)])
            add_run(rnd, s, c, "CreateUserPool", reqs)
            c.close()
        finally:
            s.stop()
        done += batch
    return rnd


# --- report --------------------------------------------------------------------

def fmt_ratio(r):
    lo, hi = r["ratio"]
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f}–{hi:.2f}"


def fmt_ref(r):
    lo, hi = r["reference_us"]
    v = f"~{lo:g} µs" if lo == hi else f"{lo:g}–{hi:g} µs"
    return f"{r['reference']}: {v}"


def markdown(results):
    st, rss = results["startup"], results["idle_rss"]
    rows = [
        ("Start-up, spawn → first 200 on /health, median of "
         f"{st['runs']}", f"{st['median_ms']} ms", f"goal < {st['goal_ms']:g} ms",
         "met" if st["median_ms"] < st["goal_ms"] else "MISSED"),
        (f"Start-up, max of {st['runs']}", f"{st['max_ms']} ms", f"goal < {st['goal_ms']:g} ms",
         "met" if st["max_ms"] < st["goal_ms"] else "MISSED"),
        ("Idle RSS (VmRSS) after start + one request", f"{rss['vm_rss_mb']} MB",
         f"goal < {rss['goal_mb']:g} MB", "met" if rss["vm_rss_kb"] * 1024 < rss["goal_mb"] * 1e6 else "MISSED"),
    ]
    for op in results["operations"]:
        name = op["op"]
        refs = list(op["vs_reference"].values())
        rng = op["server_cpu_us_per_op_rounds"]
        rows.append((f"{name}: server CPU per request (utime+stime), median of {op['rounds']} rounds "
                     f"× {op['requests_per_round']} (rounds {min(rng):g}–{max(rng):g}; "
                     f"tick = {op['tick_resolution_us_per_op']:g} µs/req)",
                     f"{op['server_cpu_us_per_op']} µs", fmt_ref(refs[0]), f"{fmt_ratio(refs[0])}×"))
        for r in refs[1:]:
            rows.append((f"{name}: same, against the floor", "", fmt_ref(r), f"{fmt_ratio(r)}×"))
        rows.append((f"{name}: server CPU per request (schedstat ns, cross-check)",
                     f"{op['server_cpu_us_per_op_schedstat']} µs", "", ""))
        rows.append((f"{name}: client latency median / p99",
                     f"{op['latency_median_us']} / {op['latency_p99_us']} µs", "", ""))
        rows.append((f"{name}: throughput, one connection",
                     f"{op['throughput_per_s']:.0f} req/s", "", ""))
    out = ["| Figure | Measured | Goal / reference | Ratio |", "|---|---:|---|---:|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


def busy_pct(seconds=1.0):
    """System-wide CPU busy share over a short window: is the machine quiet?"""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return round(100.0 * (1 - (i1 - i0) / max(1, t1 - t0)), 1)


def wait_quiet(max_wait):
    """Waits up to max_wait s for 3 consecutive seconds under 5% CPU busy (others' builds)."""
    deadline, quiet = time.monotonic() + max_wait, 0
    while max_wait > 0 and quiet < 3 and time.monotonic() < deadline:
        quiet = quiet + 1 if busy_pct(1.0) < 5.0 else 0


def calibrate():
    """A fixed CPU-bound task (SHA-256 of 64 MiB, best of 3, ms): how fast the host runs now.
    Shared virtual machines drift; compare runs only when this figure agrees."""
    data, best = b"x" * (64 << 20), float("inf")
    for _ in range(3):
        t = time.perf_counter()
        hashlib.sha256(data).digest()
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "data_dir_filesystem": filesystem_of(tempfile.gettempdir()),
            "loadavg_at_start": load}


def filesystem_of(path):
    """(mount point, type, device) holding path, from /proc/mounts: where SQLite fsyncs."""
    path, best = os.path.realpath(path), ("", "", "")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                best = (mnt, fstype, dev)
    return {"mount": best[0], "type": best[1], "device": best[2]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True, help="path to the cognate binary")
    ap.add_argument("--quick", action="store_true", help="300 requests per operation instead of 2000")
    ap.add_argument("-n", "--requests", type=int, help="requests per operation (default 2000)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of N requests per operation, each on fresh servers; "
                         "the median round is reported")
    ap.add_argument("--startup-runs", type=int, default=10)
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="before each part, wait up to this long for the machine to be idle")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "out", "results.json"))
    args = ap.parse_args()
    n = args.requests or (300 if args.quick else 2000)
    binary = os.path.abspath(args.bin)

    results = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "binary": binary,
        "machine": machine(),
        "requests_per_op": n,
        "warmup": args.warmup,
        "clk_tck": CLK_TCK,
        "reference_source": STACK_MD,
    }
    wait_quiet(args.wait_quiet)
    results["machine"]["cpu_busy_pct_before"] = busy_pct()
    results["machine"]["calibration_sha256_64mib_ms"] = calibrate()
    log(f"start-up x{args.startup_runs} ...")
    results["startup"] = bench_startup(binary, args.startup_runs)
    wait_quiet(args.wait_quiet)
    log("idle RSS ...")
    results["idle_rss"] = bench_idle_rss(binary)
    ops = []
    for op, round_fn, refs in [("DescribeUserPool", round_describe, ["read", "floor"]),
                               ("CreateUserPool", round_create, ["insert"])]:
        log(f"{op}: {args.rounds} rounds of {n} ...")
        rounds = []
        for _ in range(args.rounds):
            wait_quiet(args.wait_quiet)
            rounds.append(round_fn(binary, n, args.warmup))
        ops.append(summarize(op, n, rounds, refs))
    results["operations"] = ops
    with open("/proc/loadavg") as f:
        results["machine"]["loadavg_at_end"] = f.read().split()[:3]

    table = markdown(results)
    results["markdown"] = table
    m = results["machine"]
    print(f"Cognate benchmark, {results['date_utc']}, {m['nproc']} cores, {m['cpu_model']}, "
          f"CPU {m['cpu_busy_pct_before']}% busy before the run, "
          f"other processes {max(o['other_processes_cpu_pct'] for o in ops)}% during the timed runs, "
          f"calibration {m['calibration_sha256_64mib_ms']} ms, "
          f"data dirs on {m['data_dir_filesystem']['type']}, {n} requests per operation\n")
    other = max(o["other_processes_cpu_pct"] for o in ops)
    if other > 10 or m["cpu_busy_pct_before"] > 10:
        results["warning"] = "the machine was busy: CPU figures are not clean (see --wait-quiet)"
        print(f"**WARNING: {results['warning']}**\n")
    print(table, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")
    log(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
