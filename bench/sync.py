#!/usr/bin/env python3
"""Cognate benchmark, Cognito Sync: UpdateRecords (10 patches) and ListRecords (1,024 records).

On a fresh server (SQLite, or PostgreSQL with --backend postgres): one identity pool allowing
guests; every Cognito Sync call is REST-JSON, SigV4-signed with the developer's key (test/test,
service cognito-sync), which may reach any identity of the pool.

1. Headline: on one connection (the cleanest server CPU per call) and from --connections
   connections (one client process each), --rounds rounds, the median round by server CPU:
   - UpdateRecords of 10 patches: each connection has its own guest identity with a dataset of 10
     records; every call replaces the 10 records with the SyncCount they have (the dataset's
     count, known without reading since the connection is its dataset's only writer), echoing
     the SyncSessionToken of one ListRecords made before the clock starts (a token is valid for
     an hour and may be used more than once);
   - ListRecords of a dataset of 1,024 records, all in one page (maxResults 1024, lastSyncCount 0).
2. Flatness: identities are added (GetId of a guest, ListRecords, UpdateRecords of 10 patches
   creating its dataset "settings", from --fill-connections connections) up to --identities, and
   at 1%, 10%, 25%, 50%, 75% and 100% of it one connection measures again UpdateRecords of 10
   patches on the headline dataset, UpdateRecords of 10 patches on datasets of older identities
   picked at random among all filled (one call each, their SyncCounts read by a ListRecords before
   the clock starts), and ListRecords of the 1,024 records.

Requests are signed before the clock starts and sent over a minimal keep-alive HTTP/1.1 client on
a raw socket (bench/identity.py's); every answer must be a 200 and is checked for its records.
Server CPU is utime+stime of the server (per-thread schedstat as a cross-check), and on PostgreSQL
the CPU of the backends serving it (bench/loadgen.py). Run through bench/run.sh sync.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import random
import secrets
import subprocess
import sys
import time
import urllib.parse

import bench as B
import identity as I
import loadgen as L

SERVICE = "cognito-sync"
ID_PREFIX = "AWSCognitoIdentityService."
GUEST_ROLE = "arn:aws:iam::000000000000:role/bench-sync-guest"
AUTH_ROLE = "arn:aws:iam::000000000000:role/bench-sync-authenticated"
PATCHES = 10
BIG = 1024
VALUE = "v" * 24  # every record's value: 24 bytes
log = B.log

# stack.md, "HTTP and storage" (server CPU per request; PostgreSQL: server + postgres).
REFERENCE = {
    "sqlite": {
        "update": {"label": "SQLite insert, one commit per request (rusqlite)", "low": 95.0, "high": 185.0},
        "list": {"label": "SQLite read by key, rusqlite", "low": 24.0, "high": 36.0},
    },
    "postgres": {
        "update": {"label": "PostgreSQL insert, sqlx (~120 + ~160 in postgres)", "low": 280.0, "high": 280.0},
        "list": {"label": "PostgreSQL read by key, sqlx (+ the server's own CPU)", "low": 84.0, "high": 84.0},
    },
}
LABEL = {
    "update": f"UpdateRecords, {PATCHES} patches (replace), own dataset",
    "update_old": f"UpdateRecords, {PATCHES} patches, a random older identity's dataset",
    "list": f"ListRecords, {BIG:,} records in one page",
}


# --- SigV4 for REST-JSON --------------------------------------------------------------------

def _quote(s, safe=""):
    return urllib.parse.quote(s, safe=safe + "-_.~")


def signed_request(host, method, path, query=None, body=b""):
    """The bytes of one SigV4-signed (test/test) cognito-sync request. path is as sent (labels
    already percent-encoded); its canonical form encodes it once more, as the SDKs do."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    query = query or {}
    qs = "&".join(f"{_quote(k)}={_quote(str(v))}" for k, v in sorted(query.items()))
    headers = {"host": host, "x-amz-date": amz_date}
    if method != "GET":
        headers["content-type"] = "application/json"
    names = sorted(headers)
    canonical = "\n".join([
        method, _quote(path, safe="/"), qs,
        "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{B.REGION}/{SERVICE}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = B._hmac(("AWS4" + B.SECRET_KEY).encode(), day)
    for part in (B.REGION, SERVICE, "aws4_request"):
        key = B._hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (f"AWS4-HMAC-SHA256 Credential={B.ACCESS_KEY}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature}")
    target = path + (f"?{qs}" if qs else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"X-Amz-Date: {amz_date}", f"Authorization: {auth}",
             f"Content-Length: {len(body)}"]
    if method != "GET":
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def dataset_path(pool, identity, name):
    return (f"/identitypools/{_quote(pool)}/identities/{_quote(identity)}/datasets/{_quote(name)}")


def list_req(host, pool, identity, name, max_results=BIG):
    return signed_request(host, "GET", dataset_path(pool, identity, name) + "/records",
                          {"maxResults": max_results, "lastSyncCount": 0})


def update_req(host, pool, identity, name, token, patches):
    body = json.dumps({"SyncSessionToken": token, "DeviceId": "bench", "RecordPatches": [
        {"Op": "replace", "Key": k, "Value": v, "SyncCount": c} for k, v, c in patches]}).encode()
    return signed_request(host, "POST", dataset_path(pool, identity, name), body=body)


def ten(count, tag=""):
    """The 10 patches of a dataset whose 10 records are at SyncCount count."""
    return [(f"key{i}", f"{VALUE[:-len(tag)] if tag else VALUE}{tag}", count) for i in range(PATCHES)]


def listing(conn, pool, identity, name):
    """(SyncSessionToken, DatasetSyncCount, {key: SyncCount}) of a dataset, read now."""
    host = conn.host
    body = json.loads(conn.roundtrip(list_req(host, pool, identity, name)))
    return body["SyncSessionToken"], body["DatasetSyncCount"], {r["Key"]: r["SyncCount"] for r in body["Records"]}


def check_update(body):
    if body.count(b'"SyncCount"') != PATCHES:
        raise RuntimeError(f"UpdateRecords: not {PATCHES} records: {body[:300]!r}")


def check_list(body):
    if b'"Count":1024' not in body and b'"Count": 1024' not in body:
        raise RuntimeError(f"ListRecords: not {BIG} records: {body[:300]!r}")


# --- the load ----------------------------------------------------------------------------

class Task:
    """n calls of one kind per connection; share = the connection's index.

    ctx: pool, own datasets {share: identity} (update), the big dataset's identity (list), and
    for update_old {share: [identity ids]} (one call each)."""

    def __init__(self, kind, ctx, n):
        self.kind, self.ctx, self.n = kind, ctx, n

    def setup(self, client, share):
        client.close()
        conn = I.Conn(client.server.port)
        ctx, pool, host = self.ctx, self.ctx["pool"], conn.host
        if self.kind == "update":
            identity = ctx["own"][share]
            token, _, counts = listing(conn, pool, identity, "own")
            base = counts["key0"]
            reqs = [update_req(host, pool, identity, "own", token, ten(base + j, f".{j}")) for j in range(self.n)]
        elif self.kind == "update_old":
            reqs = []
            for identity in ctx["old"][share][:self.n]:
                token, _, counts = listing(conn, pool, identity, "settings")
                reqs.append(update_req(host, pool, identity, "settings", token, ten(counts["key0"], "!")))
        elif self.kind == "list":
            reqs = [list_req(host, pool, ctx["big"], "big") for _ in range(self.n)]
        else:
            raise ValueError(self.kind)
        return conn, reqs

    def run(self, client, share, lat, state):
        conn, reqs = state
        rt, pc = conn.roundtrip, time.perf_counter
        check = check_list if self.kind == "list" else check_update
        for req in reqs:
            t = pc()
            body = rt(req)
            lat.append(pc() - t)
            check(body)
        conn.close()


class FillTask:
    """n new identities per connection (share = n), each with a dataset "settings" of 10 records:
    GetId (unsigned), ListRecords, UpdateRecords. Returns the identity ids."""

    def __init__(self, pool):
        self.pool = pool

    def setup(self, client, share):
        client.close()
        conn = I.Conn(client.server.port)
        return conn, I.get_id_req(conn, self.pool)

    def run(self, client, n, lat, state):
        conn, get_id = state
        rt, pc, host, pool = conn.roundtrip, time.perf_counter, conn.host, self.pool
        ids = []
        for _ in range(n):
            t = pc()
            identity = I.identity_of(rt(get_id))
            token = json.loads(rt(list_req(host, pool, identity, "settings")))["SyncSessionToken"]
            check_update(rt(update_req(host, pool, identity, "settings", token, ten(0))))
            lat.append(pc() - t)
            ids.append(identity)
        conn.close()
        return ids


def measure(server, kind, ctx, conns, per_conn, rounds, pg):
    per_round = []
    for r in range(rounds):
        c = ctx
        if kind == "update_old":
            # Distinct identities in each round and connection.
            picks = ctx["pick"](conns * per_conn)
            c = dict(ctx, old={w: picks[w * per_conn:(w + 1) * per_conn] for w in range(conns)})
        delta, lat, _, _ = L.run_parallel(server, Task(kind, c, per_conn), list(range(conns)), with_postgres=pg)
        per_round.append(L.per_op(delta, conns * per_conn, lat))
    med = dict(sorted(per_round, key=lambda x: x["server_cpu_us"])[len(per_round) // 2])
    med["connections"], med["rounds"] = conns, rounds
    for key in ("server_cpu_us", "server_cpu_us_schedstat", "postgres_cpu_us", "ops_per_s", "other_processes_cpu_pct"):
        if key in per_round[0]:
            med[key + "_rounds"] = [x.get(key) for x in per_round]
    return med


# --- setup ---------------------------------------------------------------------------------

def setup(server, connections):
    c = B.Client(server)
    try:
        pool = I.id_call(c, "CreateIdentityPool", {"IdentityPoolName": "bench_sync",
                                                  "AllowUnauthenticatedIdentities": True})["IdentityPoolId"]
        I.id_call(c, "SetIdentityPoolRoles", {"IdentityPoolId": pool,
                                            "Roles": {"authenticated": AUTH_ROLE, "unauthenticated": GUEST_ROLE}})
    finally:
        c.close()
    conn = I.Conn(server.port)
    try:
        host = conn.host
        own = {}
        for w in range(max(1, connections)):
            identity = I.identity_of(conn.roundtrip(I.get_id_req(conn, pool)))
            token, _, _ = listing(conn, pool, identity, "own")
            check_update(conn.roundtrip(update_req(host, pool, identity, "own", token, ten(0))))
            own[w] = identity
        big = I.identity_of(conn.roundtrip(I.get_id_req(conn, pool)))
        token, _, _ = listing(conn, pool, big, "big")
        for start in range(0, BIG, 256):
            patches = [(f"record{i:04d}", VALUE, 0) for i in range(start, start + 256)]
            body = conn.roundtrip(update_req(host, pool, big, "big", token, patches))
            if body.count(b'"SyncCount"') != 256:
                raise RuntimeError(f"setup: {body[:300]!r}")
        # The flow is right: a stale SyncCount is a conflict (409), and changes nothing.
        token, count, _ = listing(conn, pool, own[0], "own")
        try:
            conn.roundtrip(update_req(host, pool, own[0], "own", token, [("key0", "stale", count - 1)]))
            raise AssertionError("a stale SyncCount was accepted")
        except RuntimeError as e:
            if "HTTP 409" not in str(e):
                raise
        if listing(conn, pool, own[0], "own")[1] != count:
            raise AssertionError("a conflict changed the dataset")
        check_list(conn.roundtrip(list_req(host, pool, big, "big")))
    finally:
        conn.close()
    # identities: own datasets + the big one
    return {"pool": pool, "own": own, "big": big, "initial_identities": len(own) + 1}


def count_in_store(server, pg, url, schema, pool):
    """(identities, datasets, records) of the pool, counted in the database itself."""
    q = [f"SELECT count(*) FROM {{s}}identities WHERE identity_pool_id = '{pool}'",
         f"SELECT count(*) FROM {{s}}sync_datasets WHERE identity_pool_id = '{pool}' AND NOT deleted",
         f"SELECT count(*) FROM {{s}}sync_records WHERE identity_pool_id = '{pool}'"]
    try:
        if pg:
            return [int(I.psql(url, x.format(s=f"{schema}."))) for x in q]
        import sqlite3
        db = sqlite3.connect(f"file:{I.sqlite_file(server.data_dir)}?mode=ro", uri=True, timeout=30)
        try:
            return [db.execute(x.format(s="")).fetchone()[0] for x in q]
        finally:
            db.close()
    except Exception as e:  # noqa: a cross-check only
        log(f"could not count in the store: {e}")
        return None


# --- main ----------------------------------------------------------------------------------

def row_log(kind, res, pg):
    log(f"  {kind}: server {res['server_cpu_us']:.0f} µs/call ({res['server_cpu_us_schedstat']:.0f} schedstat)"
        + (f" + postgres {res.get('postgres_cpu_us', 0):.0f}" if pg else "")
        + f", {res['ops_per_s']:.0f}/s, latency {res['latency_median_ms']:.2f} / {res['latency_p99_ms']:.2f} ms, "
        f"rounds {res['server_cpu_us_rounds']}, other {res['other_processes_cpu_pct']}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/test")
    ap.add_argument("--quick", action="store_true", help="10,000 identities, fewer calls per round")
    ap.add_argument("--identities", type=int, help="identities with a dataset to fill to (default 100,000)")
    ap.add_argument("--steps", help="comma-separated sizes to probe at (default 1%%, 10%%, 25%%, 50%%, 75%%, 100%%)")
    ap.add_argument("--connections", type=int, default=4, help="concurrent clients for throughput (default 4)")
    ap.add_argument("--fill-connections", type=int, default=16, help="connections filling (default 16)")
    ap.add_argument("-n", "--ops", type=int, help="UpdateRecords per round and connection (default 2000)")
    ap.add_argument("--list-ops", type=int, help="ListRecords per round and connection (default 300)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--probe", type=int, help="UpdateRecords per probe round (default 500; ListRecords: a quarter)")
    ap.add_argument("--probe-rounds", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=10_000, help="identities per fill chunk")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--out")
    args = ap.parse_args()
    args.identities = args.identities if args.identities is not None else (10_000 if args.quick else 100_000)
    args.ops = args.ops or (500 if args.quick else 2000)
    args.list_ops = args.list_ops or (100 if args.quick else 300)
    args.probe = args.probe or (200 if args.quick else 500)
    pg = args.backend == "postgres"
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = args.out or os.path.join(here, "out", f"sync-{args.backend}.json")
    binary = os.path.abspath(args.bin)
    rng = random.Random(42)

    results = L.base_results(binary, args.wait_quiet)
    results.update({"backend": args.backend, "connections": args.connections, "fill_connections":
                    args.fill_connections, "ops_per_round": args.ops, "list_ops_per_round": args.list_ops,
                    "rounds": args.rounds, "probe": args.probe, "probe_rounds": args.probe_rounds,
                    "target_identities": args.identities, "reference_us": REFERENCE[args.backend],
                    "value_bytes": len(VALUE)})
    try:
        results["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           cwd=here).stdout.strip()
        results["uncommitted_server_sources"] = subprocess.run(
            ["git", "status", "--porcelain", "--", "crates", "Cargo.toml", "Cargo.lock"], capture_output=True,
            text=True, cwd=here).stdout.split("\n")[:-1]
    except OSError:
        pass
    extra_args, extra_env, schema = [], {}, None
    if pg:
        schema = f"bench_sync_{secrets.token_hex(4)}"
        extra_args = ["--database-url", args.database_url, "--database-schema", schema]
        extra_env = {"COGNATE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
        results["postgres_schema"] = schema
    server = L.Server(binary, extra_args, extra_env)
    try:
        server.wait_ready(timeout=60)
        ctx = setup(server, args.connections)
        count = ctx["initial_identities"]
        filled = []
        ctx["pick"] = lambda k: rng.sample(filled, min(k, len(filled)))
        results["identity_pool_id"] = ctx["pool"]
        results["rss_kb_at_start"] = server.rss_kb()
        log(f"{args.backend}: identity pool {ctx['pool']}")

        ops = {}
        for kind, n in (("update", args.ops), ("list", args.list_ops)):
            entry = {}
            for mode, conns, per_conn in (("sequential", 1, n), ("concurrent", args.connections, max(50, n // 2))):
                B.wait_quiet(args.wait_quiet)
                log(f"{kind}: {conns} connection(s), {args.rounds} × {conns} × {per_conn} ...")
                entry[mode] = measure(server, kind, ctx, conns, per_conn, args.rounds, pg)
                row_log(kind, entry[mode], pg)
            ops[kind] = entry
        results["operations"] = ops
        L.write_json(out_path, results)

        probes, fills = [], []
        results["probes"], results["fill"] = probes, fills

        def probe():
            p = {"identities": count, "rss_kb_start": server.rss_kb()}
            B.wait_quiet(args.wait_quiet)
            p["update"] = measure(server, "update", ctx, 1, args.probe, args.probe_rounds, pg)
            if len(filled) >= args.probe:
                p["update_old"] = measure(server, "update_old", ctx, 1, args.probe, args.probe_rounds, pg)
            p["list"] = measure(server, "list", ctx, 1, max(20, args.probe // 4), args.probe_rounds, pg)
            p["rss_kb_end"] = server.rss_kb()
            p["data_bytes"] = None if pg else server.data_bytes()
            probes.append(p)
            log(f"  probe at {count:,}: " + ", ".join(
                f"{k} {p[k]['server_cpu_us']:.0f} µs" + (f" + {p[k].get('postgres_cpu_us', 0):.0f}" if pg else "")
                for k in ("update", "update_old", "list") if k in p))
            L.write_json(out_path, results)

        probe()
        if args.steps:
            points = sorted({int(x.replace("_", "")) for x in args.steps.split(",")})
        else:
            points = sorted({max(1, int(args.identities * f)) for f in (0.01, 0.1, 0.25, 0.5, 0.75, 1.0)})
        t_fill = time.monotonic()
        for target in points:
            if target <= len(filled):
                continue
            step = {"from_identities": len(filled)}
            deltas, lats = [], []
            while len(filled) < target:
                n = min(args.chunk, target - len(filled))
                f = args.fill_connections
                shares = [s for s in (n // f + (1 if w < n % f else 0) for w in range(f)) if s]
                delta, lat, extras, _ = L.run_parallel(server, FillTask(ctx["pool"]), shares, with_postgres=pg)
                for e in extras:
                    filled.extend(e)
                count += n
                deltas.append(delta)
                lats.append(lat)
                log(f"  fill → {len(filled):,}: {n / delta['wall_s']:.0f} identities/s, server "
                    f"{delta['server_ticks'] / B.CLK_TCK / n * 1e6:.0f} µs per identity, other {delta['other_pct']}%")
            allat = [x for lt in lats for x in lt]
            step.update(L.per_op(I.merge_deltas(deltas), len(filled) - step["from_identities"], allat))
            step["to_identities"] = len(filled)
            fills.append(step)
            probe()
        results["fill_elapsed_s"] = round(time.monotonic() - t_fill, 1)
        results["filled_identities"] = len(filled)
        results["counted_in_store"] = count_in_store(server, pg, args.database_url, schema, ctx["pool"])
        log(f"filled {len(filled):,} identities with a dataset; in the store (identities, datasets, records): "
            f"{results['counted_in_store']}")
        results["rss_kb_at_end"] = server.rss_kb()
        results["vm_hwm_kb_at_end"] = server.status_kb("VmHWM")
        results["data_bytes_at_end"] = None if pg else server.data_bytes()
        with open("/proc/loadavg") as fh:
            results["machine"]["loadavg_at_end"] = fh.read().split()[:3]
    finally:
        server.stop()
        if schema:
            try:
                I.psql(args.database_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                results["postgres_schema_dropped"] = True
            except Exception as e:  # noqa
                log(f"could not drop schema {schema}: {e}")
    results["markdown"] = markdown(results)
    print(f"Cognate Cognito Sync benchmark ({args.backend}), {L.machine_header(results)}, "
          f"commit {results.get('commit', '?')}\n")
    print(results["markdown"], flush=True)
    L.write_json(out_path, results)


# --- report ------------------------------------------------------------------------------

def cpu(e, pg):
    return e["server_cpu_us"] + (e.get("postgres_cpu_us", 0) if pg else 0)


def cpu_cell(e, pg):
    s = f"{e['server_cpu_us']:,.0f} ({e['server_cpu_us_schedstat']:,.0f})"
    return s + (f" + {e.get('postgres_cpu_us', 0):,.0f}" if pg else "")


def ratio(value, ref):
    if ref["low"] == ref["high"]:
        return f"{value / ref['high']:.1f}× ~{ref['high']:g} µs"
    return f"{value / ref['high']:.1f}–{value / ref['low']:.1f}× {ref['low']:g}–{ref['high']:g} µs"


def markdown(r):
    pg = r["backend"] == "postgres"
    refs = r["reference_us"]
    out, rows = [], []
    for kind, e2 in r.get("operations", {}).items():
        for mode in ("sequential", "concurrent"):
            e = e2[mode]
            c = cpu(e, pg)
            rounds = e["server_cpu_us_rounds"]
            rows.append([LABEL[kind], e["connections"], cpu_cell(e, pg), f"{min(rounds):,.0f}–{max(rounds):,.0f}",
                         f"{e['ops_per_s']:,.0f}", f"{1e6 / c:,.0f}" if c else "–",
                         f"{e['server_cores_busy']:.2f} / {e['client_cores_busy']:.2f}",
                         f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}",
                         ratio(c, refs[kind]), f"{e['other_processes_cpu_pct']}"])
    if rows:
        out.append(f"{r['backend']}; {r['rounds']} rounds per row, median round by server CPU per call. "
                   f"References (stack.md): UpdateRecords against \"{refs['update']['label']}\", ListRecords "
                   f"against \"{refs['list']['label']}\".\n")
        out.append(L.md_table(["operation", "conns", "server CPU µs/call (schedstat)" + (" + postgres" if pg else ""),
                               "rounds range µs (server)", "calls/s", "calls/s per core (1/CPU)",
                               "server / client cores busy", "latency median / p99 ms", "ratio to stack.md",
                               "other procs CPU %"], rows))
    fills = r.get("fill", [])
    if fills:
        rows = [[f"{s['from_identities']:,} → {s['to_identities']:,}", f"{s['ops_per_s']:,.0f}", cpu_cell(s, pg),
                 f"{s['server_cores_busy']:.2f}", f"{s['latency_median_ms']:.2f} / {s['latency_p99_ms']:.2f}",
                 f"{s['other_processes_cpu_pct']}"] for s in fills]
        out.append(f"\nFill: new identities, each GetId + ListRecords + UpdateRecords of {PATCHES} patches, from "
                   f"{r['fill_connections']} connections ({r.get('fill_elapsed_s', 0):,.0f} s with the probes):\n")
        out.append(L.md_table(["identities with a dataset", "identities/s", "server CPU µs per identity (3 calls)"
                               + (" + postgres" if pg else ""), "server cores busy",
                               "latency of the 3 calls, median / p99 ms", "other procs CPU %"], rows))
    probes = r.get("probes", [])
    if probes:
        rows = []
        for p in probes:
            def cell(k):
                e = p.get(k)
                return "–" if not e else f"{cpu_cell(e, pg)} / {e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}"
            rows.append([f"{p['identities']:,}", cell("update"), cell("update_old"), cell("list"), L.mb(p["rss_kb_end"]),
                         "–" if p["data_bytes"] is None else f"{p['data_bytes'] / 1e6:,.0f}",
                         f"{max(p[k]['other_processes_cpu_pct'] for k in ('update', 'update_old', 'list') if k in p)}"])
        out.append(f"\nFlatness: one connection, {r['probe_rounds']} rounds × {r['probe']} UpdateRecords "
                   f"({max(20, r['probe'] // 4)} ListRecords), median round; cells are server CPU µs per call "
                   f"(schedstat){' + postgres' if pg else ''} / latency median / p99 ms:\n")
        out.append(L.md_table(["identities in the pool", LABEL["update"], LABEL["update_old"], LABEL["list"],
                               "server RSS MB", "data dir MB", "other procs CPU % (max)"], rows))
    if "counted_in_store" in r:
        out.append(f"\nIn the store at the end (identities, live datasets, records): {r['counted_in_store']}; "
                   f"server RSS {L.mb(r['rss_kb_at_start'])} MB at start, {L.mb(r['rss_kb_at_end'])} MB at the end "
                   f"(VmHWM {L.mb(r['vm_hwm_kb_at_end'])} MB).")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
