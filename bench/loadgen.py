"""Shared by bench/users.py and bench/auth.py: a server started with options,
a multi-process load generator with CPU accounting, and the client side of
Cognito's SRP (shared/reference/cognito-api.md section 3).

Standard library only; gmpy2 (installed by bench/run.sh into bench/.venv) is
used for the client's SRP modular exponentiation when present, because
Python's own pow() costs ~9 ms per 3072-bit exponentiation with a 512-bit
exponent here (gmpy2: ~1.2 ms), which would make the client, not the server,
the bottleneck.
"""

import array
import base64
import datetime
import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import tempfile
import time

import bench as B

try:
    import gmpy2

    def powmod(base, exp, mod):
        return int(gmpy2.powmod(base, exp, mod))

    BIGINT = "gmpy2 " + gmpy2.version()
except ImportError:  # pragma: no cover - depends on the environment
    gmpy2 = None

    def powmod(base, exp, mod):
        return pow(base, exp, mod)

    BIGINT = "python pow() (slow: install gmpy2, see bench/run.sh)"

CLK_TCK = B.CLK_TCK
log = B.log


# --- server --------------------------------------------------------------------

class Server(B.Server):
    """bench.Server with extra flags and environment, optionally on a kept data dir."""

    def __init__(self, binary, extra_args=(), extra_env=None, data_dir=None, cpus=None):  # noqa: no super()
        self.tmp = tempfile.TemporaryDirectory(prefix="cognate-bench-")
        self.data_dir = data_dir or os.path.join(self.tmp.name, "data")
        self.port = B.free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.tmp.name, "server.log"), "wb")
        env = B.clean_env()
        env.update(extra_env or {})
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", self.host, "--data-dir", self.data_dir, *extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env,
            # Pinned before exec, so every thread (and tokio's worker count) sees only these CPUs.
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        self.pid = self.proc.pid
        self.cpus = sorted(cpus) if cpus else None

    def rss_kb(self):
        return self.status_kb("VmRSS")

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def data_bytes(self):
        total = 0
        for dirpath, _, files in os.walk(self.data_dir):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(dirpath, f))
                except OSError:
                    pass
        return total


def pid_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, PermissionError):
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def _tcp_table():
    """(local port, remote port, inode) of every TCP socket (IPv4 and IPv6)."""
    rows = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    rows.append((int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16), p[9]))
        except FileNotFoundError:
            pass
    return rows


def postgres_backends(server_pid, pg_port=5432):
    """PIDs of the PostgreSQL backends serving server_pid's connections (matched through
    /proc/net/tcp: the server's local ports are the backends' remote ports)."""
    mine = _socket_inodes(server_pid)
    table = _tcp_table()
    ports = {lp for lp, rp, ino in table if ino in mine and rp == pg_port}
    theirs = {ino for lp, rp, ino in table if lp == pg_port and rp in ports}
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        if _socket_inodes(pid) & theirs:
            pids.append(int(pid))
    return pids


def postgres_ticks(server_pid):
    """{pid: utime+stime} of the backends serving the server. Compared with pg_delta: a
    backend that exits meanwhile is lost, one that starts meanwhile counts whole; fine for a
    server keeping its connection pool."""
    out = {}
    for pid in postgres_backends(server_pid):
        try:
            out[pid] = pid_ticks(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def pg_delta(t0, t1):
    return sum(v - t0.get(pid, 0) for pid, v in t1.items())


class Snapshot:
    """CPU counters at one instant: server ticks and schedstat ns, whole machine, optional postgres."""

    def __init__(self, server, with_postgres=False):
        self.t = time.perf_counter()
        self.server_ticks = server.cpu_ticks()
        self.server_ns = server.cpu_ns()
        self.pg_ticks = postgres_ticks(server.pid) if with_postgres else {}
        self.stat = B.proc_stat_cpu()
        self.me = os.times()


def cpu_delta(s0, s1, client_ticks):
    """Differences between two snapshots; client_ticks is what the load processes used."""
    wall = s1.t - s0.t
    server = s1.server_ticks - s0.server_ticks
    pg = pg_delta(s0.pg_ticks, s1.pg_ticks)
    me = ((s1.me.user + s1.me.system) - (s0.me.user + s0.me.system)) * CLK_TCK
    busy = s1.stat[1] - s0.stat[1]
    total = max(1, s1.stat[0] - s0.stat[0])
    other = max(0.0, busy - server - pg - client_ticks - me)
    return {
        "wall_s": wall,
        "server_ticks": server,
        "server_ns": s1.server_ns - s0.server_ns,
        "postgres_ticks": pg,
        "postgres_backends": len(s1.pg_ticks),
        "client_ticks": client_ticks + me,
        "other_pct": round(100.0 * other / total, 1),
        "irq_pct": round(100.0 * (s1.stat[2] - s0.stat[2]) / total, 1),
        "steal_pct": round(100.0 * (s1.stat[3] - s0.stat[3]) / total, 1),
        "machine_busy_pct": round(100.0 * busy / total, 1),
    }


def per_op(delta, n, lat=None):
    """Figures per operation from a cpu_delta over n operations."""
    t = CLK_TCK
    out = {
        "ops": n,
        "wall_s": round(delta["wall_s"], 2),
        "ops_per_s": round(n / delta["wall_s"], 1),
        "server_cpu_us": round(delta["server_ticks"] / t / n * 1e6, 1),
        "server_cpu_us_schedstat": round(delta["server_ns"] / 1000.0 / n, 1),
        "tick_resolution_us": round(1e6 / t / n, 2),
        "server_cores_busy": round(delta["server_ticks"] / t / delta["wall_s"], 2),
        "client_cpu_us": round(delta["client_ticks"] / t / n * 1e6, 1),
        "client_cores_busy": round(delta["client_ticks"] / t / delta["wall_s"], 2),
        "other_processes_cpu_pct": delta["other_pct"],
        "irq_softirq_cpu_pct": delta["irq_pct"],
        "steal_cpu_pct": delta["steal_pct"],
        "machine_busy_pct": delta["machine_busy_pct"],
    }
    if delta["postgres_ticks"]:
        out["postgres_cpu_us"] = round(delta["postgres_ticks"] / t / n * 1e6, 1)
        out["postgres_backends"] = delta["postgres_backends"]
    if lat is not None and len(lat):
        s = sorted(lat)
        out["latency_median_ms"] = round(statistics.median(s) * 1e3, 3)
        out["latency_p99_ms"] = round(B.pct(s, 99) * 1e3, 3)
        out["latency_max_ms"] = round(s[-1] * 1e3, 3)
    return out


# --- load generator --------------------------------------------------------------

def _worker(idx, server, task, share, ready, start, results, cpus):
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        client = B.Client(server)
        state = task.setup(client, share) if hasattr(task, "setup") else None
        ready.put(idx)
        start.wait()
        t0 = os.times()
        lat = array.array("d")
        extra = task.run(client, share, lat, state)
        t1 = os.times()
        client.close()
        ticks = ((t1.user + t1.system) - (t0.user + t0.system)) * CLK_TCK
        results.put((idx, None, ticks, lat.tobytes(), extra))
    except BaseException as e:  # noqa: report everything to the parent
        try:
            ready.put(idx)
        finally:
            results.put((idx, f"{type(e).__name__}: {e}", 0, b"", None))


def run_parallel(server, task, shares, with_postgres=False, sample_every=1.0, on_sample=None,
                 client_cpus=None):
    """One worker process per share, each with its own keep-alive connection.

    task.setup(client, share) (optional) runs before the clock starts; task.run(client,
    share, lat, state) does the timed work, appending each operation's latency to lat, and
    returns something picklable. client_cpus pins the workers. Returns (delta, latencies, extras, samples): delta from
    cpu_delta, with the workers' own CPU as client CPU; samples are (elapsed s, server VmRSS
    kB) every sample_every seconds."""
    ctx = multiprocessing.get_context("fork")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_worker, args=(i, server, task, share, ready, start, results, client_cpus),
                         daemon=True)
             for i, share in enumerate(shares)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    s0 = Snapshot(server, with_postgres)
    start.set()
    got, samples = [], []
    while len(got) < len(procs):
        try:
            got.append(results.get(timeout=sample_every))
        except Exception:  # queue.Empty
            pass
        samples.append((round(time.perf_counter() - s0.t, 1), server.rss_kb()))
        if on_sample:
            on_sample(samples[-1])
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.log_tail()}")
        if len(got) < len(procs) and not any(p.is_alive() for p in procs) and results.empty():
            raise RuntimeError("load workers died without reporting")
    s1 = Snapshot(server, with_postgres)
    for p in procs:
        p.join()
    errors = [e for _, e, _, _, _ in got if e]
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed; first: {errors[0]}")
    lat = array.array("d")
    client_ticks = 0
    extras = []
    for _, _, ticks, raw, extra in sorted(got, key=lambda g: g[0]):
        a = array.array("d")
        a.frombytes(raw)
        lat.extend(a)
        client_ticks += ticks
        extras.append(extra)
    return cpu_delta(s0, s1, client_ticks), lat, extras, samples


def sequential(server, client, op, requests, with_postgres=False):
    """Pre-built requests sent back to back on one connection; returns (per_op dict, responses)."""
    lat, out = [], []
    s0 = Snapshot(server, with_postgres)
    for body, headers in requests:
        t = time.perf_counter()
        out.append(client.send(op, body, headers))
        lat.append(time.perf_counter() - t)
    s1 = Snapshot(server, with_postgres)
    # The client is this process: cpu_delta counts it through Snapshot.me.
    return per_op(cpu_delta(s0, s1, 0), len(requests), lat), out


def unsigned_headers(op):
    return {"Content-Type": B.CONTENT_TYPE, "X-Amz-Target": B.TARGET_PREFIX + op}


def call_unsigned(client, op, payload):
    body = json.dumps(payload).encode()
    return json.loads(client.send(op, body, unsigned_headers(op)))


# --- Cognito SRP, client side -------------------------------------------------------

N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def pad_hex(n):
    """Cognito's padHex: minimal two's-complement big-endian hex of a positive integer."""
    h = format(n, "x")
    if len(h) % 2:
        h = "0" + h
    if h[0] in "89abcdef":
        h = "00" + h
    return h


def hex_hash(h):
    return hashlib.sha256(bytes.fromhex(h)).hexdigest()


K_MULT = int(hex_hash(pad_hex(N) + pad_hex(G)), 16)


def srp_timestamp(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (f"{DAYS[now.weekday()]} {MONTHS[now.month - 1]} {now.day} "
            f"{now.hour:02d}:{now.minute:02d}:{now.second:02d} UTC {now.year}")


class SrpClient:
    """Client half of USER_SRP_AUTH. Keeps a few (a, A) pairs and each user's g^x, so a login
    costs the client one 3072-bit exponentiation (~512-bit exponent a + u·x), as little as
    the protocol allows; the server's work is the same as for any client."""

    def __init__(self, pool_id, pairs=16):
        self.pool_name = pool_id.split("_", 1)[1]
        self.pairs = []
        for _ in range(pairs):
            a = secrets.randbits(256) | (1 << 255)
            self.pairs.append((a, powmod(G, a, N)))
        self.turn = 0
        self.gx = {}

    def start(self):
        pair = self.pairs[self.turn % len(self.pairs)]
        self.turn += 1
        return pair

    def respond(self, pair, password, params, now=None):
        a, big_a = pair
        user_id = params["USER_ID_FOR_SRP"]
        big_b = int(params["SRP_B"], 16)
        salt = int(params["SALT"], 16)
        key = (user_id, salt)
        if key not in self.gx:
            inner = hashlib.sha256(f"{self.pool_name}{user_id}:{password}".encode()).hexdigest()
            x = int(hex_hash(pad_hex(salt) + inner), 16)
            self.gx[key] = (x, powmod(G, x, N))
        x, gx = self.gx[key]
        u = int(hex_hash(pad_hex(big_a) + pad_hex(big_b)), 16)
        if u == 0:
            raise RuntimeError("SRP: u = 0")
        s = powmod((big_b - K_MULT * gx) % N, a + u * x, N)
        prk = hmac.new(bytes.fromhex(pad_hex(u)), bytes.fromhex(pad_hex(s)), hashlib.sha256).digest()
        k = hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]
        ts = srp_timestamp(now)
        msg = (self.pool_name.encode() + user_id.encode() + base64.b64decode(params["SECRET_BLOCK"])
               + ts.encode())
        sig = base64.b64encode(hmac.new(k, msg, hashlib.sha256).digest()).decode()
        return {
            "USERNAME": user_id,
            "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
            "PASSWORD_CLAIM_SIGNATURE": sig,
            "TIMESTAMP": ts,
        }


def srp_login(client, srp, client_id, username, password, lat=None):
    """Both calls of USER_SRP_AUTH; returns AuthenticationResult. lat gets one entry per login."""
    t = time.perf_counter()
    pair = srp.start()
    r1 = call_unsigned(client, "InitiateAuth", {
        "AuthFlow": "USER_SRP_AUTH",
        "ClientId": client_id,
        "AuthParameters": {"USERNAME": username, "SRP_A": format(pair[1], "x")},
    })
    if r1.get("ChallengeName") != "PASSWORD_VERIFIER":
        raise RuntimeError(f"InitiateAuth: unexpected {r1}")
    answer = srp.respond(pair, password, r1["ChallengeParameters"])
    req = {"ChallengeName": "PASSWORD_VERIFIER", "ClientId": client_id, "ChallengeResponses": answer}
    if "Session" in r1:
        req["Session"] = r1["Session"]
    r2 = call_unsigned(client, "RespondToAuthChallenge", req)
    if lat is not None:
        lat.append(time.perf_counter() - t)
    result = r2.get("AuthenticationResult")
    if not result or "AccessToken" not in result:
        raise RuntimeError(f"RespondToAuthChallenge: no tokens: {str(r2)[:300]}")
    return result


# --- report helpers ------------------------------------------------------------------

def mb(kb):
    """kB (as /proc reports them, KiB) as MB (10^6 bytes), one decimal."""
    return f"{kb * 1024 / 1e6:.1f}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def machine_header(results):
    m = results["machine"]
    return (f"{results['date_utc']}, {m['nproc']} cores, {m['cpu_model']}, "
            f"CPU {m['cpu_busy_pct_before']}% busy before, calibration {m['calibration_sha256_64mib_ms']} ms, "
            f"load average {' '.join(m['loadavg_at_start'])} at start, "
            f"data dirs on {m['data_dir_filesystem']['type']}")


def base_results(binary, wait_quiet):
    res = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "binary": binary,
        "machine": B.machine(),
        "clk_tck": CLK_TCK,
        "client_bigint": BIGINT,
        "reference_source": B.STACK_MD,
    }
    B.wait_quiet(wait_quiet)
    res["machine"]["cpu_busy_pct_before"] = B.busy_pct()
    res["machine"]["calibration_sha256_64mib_ms"] = B.calibrate()
    return res


def write_json(path, results):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")
    log(f"wrote {path}")
