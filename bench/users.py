#!/usr/bin/env python3
"""Cognate benchmark, users: AdminCreateUser sustained into one large pool, then ListUsers
with filters on it.

Fills one pool with --users users (default 1,000,000) in steps of --step, from
--connections concurrent keep-alive connections (one client process each). Per step:
users/s, server CPU per call (utime+stime, and per-thread schedstat), the client's own
CPU, server VmRSS (end and max) and the data dir's size; after each step a short
ListUsers probe. At the end: ListUsers, one page of 60, with an email prefix filter, an
email equality filter, a prefix matching the whole pool, and no filter.

--backend postgres runs the same against PostgreSQL (a fresh schema, dropped afterwards)
for --fill-minutes, adds the CPU of the PostgreSQL backends serving the server, tracks the
size and dead row versions of the user_pools table, and at the end measures ListUsers and
AdminCreateUser again after VACUUM of that table. Run through bench/run.sh users.
"""

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import time

import bench as B
import loadgen as L

GOAL_CREATE_PER_S = 1000.0
GOAL_LIST_MS = 10.0
REF_CREATE_US = 800.0  # stack.md: AdminCreateUser incl. verifier, SQLite, ~0.8 ms (~1,300/s per core)
TEMP_PASSWORD = "Temp-Passw0rd!"
QUERIES = ["email_prefix", "email_equal", "email_prefix_all", "no_filter"]
QUERY_LABEL = {
    "email_prefix": 'email ^= "userNNNNN" (100 matches, page of 60)',
    "email_equal": 'email = "userNNNNNNN@example.com" (1 match)',
    "email_prefix_all": 'email ^= "user" (every user matches, page of 60)',
    "no_filter": "no filter (first page of 60)",
}


def username(i):
    return f"user{i:07d}"


class CreateTask:
    """AdminCreateUser for users start, start+stride, ... < stop (signed on the fly)."""

    def __init__(self, pool_id, host):
        self.pool_id, self.host = pool_id, host

    def run(self, client, share, lat, state):
        start, stop, stride = share
        for i in range(start, stop, stride):
            name = username(i)
            body = json.dumps({
                "UserPoolId": self.pool_id,
                "Username": name,
                "MessageAction": "SUPPRESS",
                "TemporaryPassword": TEMP_PASSWORD,
                "UserAttributes": [
                    {"Name": "email", "Value": f"{name}@example.com"},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": "name", "Value": f"Bench User {i}"},
                ],
            }).encode()
            headers = B.signed_headers(self.host, "AdminCreateUser", body)
            t = time.perf_counter()
            client.send("AdminCreateUser", body, headers)
            lat.append(time.perf_counter() - t)
        return None


class ListTask:
    """ListUsers of one kind, n calls per connection, random users below count."""

    def __init__(self, pool_id, host, kind, count, n):
        self.pool_id, self.host, self.kind, self.count, self.n = pool_id, host, kind, count, n

    def setup(self, client, share):
        rng = random.Random(share)
        return [(b, h) for b, h in list_requests(self.host, self.pool_id, self.kind, self.count, self.n, rng)]

    def run(self, client, share, lat, reqs):
        for body, headers in reqs:
            t = time.perf_counter()
            client.send("ListUsers", body, headers)
            lat.append(time.perf_counter() - t)


def list_payload(pool_id, kind, count, rng):
    p = {"UserPoolId": pool_id, "Limit": 60}
    i = rng.randrange(max(1, count))
    if kind == "email_prefix":
        p["Filter"] = f'email ^= "{username(i)[:9]}"'
    elif kind == "email_equal":
        p["Filter"] = f'email = "{username(i)}@example.com"'
    elif kind == "email_prefix_all":
        p["Filter"] = 'email ^= "user"'
    elif kind != "no_filter":
        raise ValueError(kind)
    return p


def list_requests(host, pool_id, kind, count, n, rng):
    return B.presign(host, "ListUsers", [list_payload(pool_id, kind, count, rng) for _ in range(n)])


def list_measure(server, pool_id, count, n, rounds, with_pg, rng):
    """Per query kind: rounds × n sequential calls on one connection; median round."""
    out = {}
    client = B.Client(server)
    try:
        for kind in QUERIES:
            # warm-up, and a check of what a call returns
            warm = list_requests(server.host, pool_id, kind, count, max(20, n // 10), rng)
            _, resp = L.sequential(server, client, "ListUsers", warm)
            returned = [len(json.loads(r)["Users"]) for r in resp]
            per_round = []
            for _ in range(rounds):
                reqs = list_requests(server.host, pool_id, kind, count, n, rng)
                res, _ = L.sequential(server, client, "ListUsers", reqs, with_pg)
                per_round.append(res)
            med = sorted(per_round, key=lambda r: r["server_cpu_us"])[len(per_round) // 2]
            entry = dict(med)
            entry["server_cpu_us_rounds"] = [r["server_cpu_us"] for r in per_round]
            entry["server_cpu_us_schedstat_rounds"] = [r["server_cpu_us_schedstat"] for r in per_round]
            entry["latency_median_ms_rounds"] = [r["latency_median_ms"] for r in per_round]
            entry["latency_p99_ms_rounds"] = [r["latency_p99_ms"] for r in per_round]
            entry["users_returned_mean"] = round(sum(returned) / len(returned), 1)
            entry["rounds"] = rounds
            out[kind] = entry
    finally:
        client.close()
    return out


def find_pool(client):
    pools = client.call("ListUserPools", {"MaxResults": 60}).get("UserPools", [])
    for p in pools:
        if p["Name"] == "bench-users":
            d = client.call("DescribeUserPool", {"UserPoolId": p["Id"]})["UserPool"]
            return p["Id"], int(d.get("EstimatedNumberOfUsers", 0))
    return None, 0


def psql(url, sql):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql], check=True,
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def pg_pool_row(url, schema):
    """Size and dead row versions of the user_pools table (one row, updated by every insert
    to keep the pool's user count), and whether autovacuum is on in this PostgreSQL."""
    try:
        size, dead, upd = psql(url, (
            f"SELECT pg_relation_size('{schema}.user_pools'), n_dead_tup, n_tup_upd "
            f"FROM pg_stat_user_tables WHERE schemaname = '{schema}' AND relname = 'user_pools'")).split("|")
        return {"user_pools_heap_bytes": int(size), "user_pools_dead_tuples": int(dead),
                "user_pools_updates": int(upd), "autovacuum": psql(url, "SHOW autovacuum")}
    except Exception as e:  # noqa: diagnostics only
        return {"error": str(e)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/test")
    ap.add_argument("--users", type=int, default=1_000_000, help="pool size to reach (default 1,000,000)")
    ap.add_argument("--step", type=int, help="users per step (default 100,000; 50,000 on postgres)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--fill-minutes", type=float,
                    help="stop filling at a step boundary when the next step would end past this "
                         "(default 25 on sqlite, 10 on postgres)")
    ap.add_argument("--probe", type=int, default=200, help="ListUsers calls per kind after each step")
    ap.add_argument("--list-calls", type=int, default=1000, help="ListUsers calls per kind and round at the end")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data-dir", help="keep the server's data here (sqlite); if it already holds the "
                                       "bench pool, filling continues from its size")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--out")
    args = ap.parse_args()
    pg = args.backend == "postgres"
    step = args.step or (50_000 if pg else 100_000)
    budget = 60 * (args.fill_minutes if args.fill_minutes is not None else (10 if pg else 25))
    out_path = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                        f"users-{args.backend}.json")
    binary = os.path.abspath(args.bin)
    rng = random.Random(42)

    results = L.base_results(binary, args.wait_quiet)
    results.update({"backend": args.backend, "connections": args.connections, "target_users": args.users,
                    "step": step, "fill_budget_s": budget,
                    "goals": {"create_per_s": GOAL_CREATE_PER_S, "list_ms": GOAL_LIST_MS}})
    extra_args, extra_env, schema = [], {}, None
    if pg:
        schema = f"bench_{secrets.token_hex(4)}"
        extra_args = ["--database-url", args.database_url, "--database-schema", schema]
        extra_env = {"COGNATE_MASTER_KEY": __import__("base64").b64encode(os.urandom(32)).decode()}
        results["postgres_schema"] = schema
    server = L.Server(binary, extra_args, extra_env, data_dir=args.data_dir)
    try:
        server.wait_ready(timeout=60)
        client = B.Client(server)
        pool_id, count = find_pool(client)
        if pool_id is None:
            pool_id = client.call("CreateUserPool", {"PoolName": "bench-users"})["UserPool"]["Id"]
        client.close()
        results["pool_id"] = pool_id
        results["start_users"] = count
        results["rss_kb_at_start"] = server.rss_kb()
        steps = []
        results["steps"] = steps
        t_fill = time.monotonic()
        last_wall = 0.0
        log(f"{args.backend}: filling pool {pool_id} from {count} to {args.users} users, "
            f"{args.connections} connections, steps of {step}, budget {budget:.0f} s; client bigint {L.BIGINT}")
        while count < args.users:
            n = min(step, args.users - count)
            elapsed = time.monotonic() - t_fill
            if steps and elapsed + last_wall * n / step > budget:
                results["stopped_early"] = (f"fill budget of {budget:.0f} s reached after {elapsed:.0f} s "
                                            f"at {count} users")
                log(results["stopped_early"])
                break
            shares = [(count + w, count + n, args.connections) for w in range(args.connections)]
            rss0 = server.rss_kb()
            delta, lat, _, samples = L.run_parallel(server, CreateTask(pool_id, server.host), shares,
                                                    with_postgres=pg)
            seg = L.per_op(delta, n, lat)
            last_wall = delta["wall_s"]
            seg.update({
                "from_users": count, "to_users": count + n,
                "rss_kb_start": rss0, "rss_kb_end": server.rss_kb(),
                "rss_kb_max": max([s[1] for s in samples] + [rss0]),
                "threads_end": server.threads(),
                "data_bytes": None if pg else server.data_bytes(),
            })
            if pg:
                seg["pg_pool_row"] = pg_pool_row(args.database_url, schema)
            count += n
            log(f"  {seg['from_users']:>8} → {seg['to_users']:>8}: {seg['ops_per_s']:.0f}/s, server "
                f"{seg['server_cpu_us']:.0f} µs/call ({seg['server_cores_busy']} cores), client "
                f"{seg['client_cpu_us']:.0f} µs/call ({seg['client_cores_busy']} cores), RSS "
                f"{seg['rss_kb_end'] / 1024:.1f} MiB, other {seg['other_processes_cpu_pct']}%")
            if args.probe:
                seg["list_probe"] = list_measure(server, pool_id, count, args.probe, 1, pg, rng)
                seg["rss_kb_after_probe"] = server.rss_kb()
                log("    ListUsers: " + ", ".join(f"{k} {v['server_cpu_us']:.0f} µs cpu / "
                                                   f"{v['latency_median_ms']:.2f} ms"
                                                   for k, v in seg["list_probe"].items()))
            steps.append(seg)
            L.write_json(out_path, results)
        results["fill_wall_s"] = round(time.monotonic() - t_fill, 1)
        results["final_users"] = count
        log(f"ListUsers at {count} users: {args.rounds} rounds × {args.list_calls} per kind ...")
        B.wait_quiet(args.wait_quiet)
        results["list_rounds"] = args.rounds
        results["list_final"] = list_measure(server, pool_id, count, args.list_calls, args.rounds, pg, rng)
        # The same prefix query from all connections at once: throughput.
        per_conn = max(50, args.list_calls)
        task = ListTask(pool_id, server.host, "email_prefix", count, per_conn)
        delta, lat, _, _ = L.run_parallel(server, task, list(range(args.connections)), with_postgres=pg)
        results["list_concurrent"] = L.per_op(delta, per_conn * args.connections, lat)
        if pg:
            # The pool's row is rewritten by every insert (its user count); with autovacuum off or
            # behind, its dead versions make every lookup of the pool slower. Measure again after
            # vacuuming that one table.
            results["pg_pool_row_before_vacuum"] = pg_pool_row(args.database_url, schema)
            psql(args.database_url, f"VACUUM {schema}.user_pools")
            results["pg_pool_row_after_vacuum"] = pg_pool_row(args.database_url, schema)
            log("after VACUUM user_pools: ListUsers, then AdminCreateUser ...")
            results["list_final_after_vacuum"] = list_measure(server, pool_id, count, args.list_calls, 1, pg, rng)
            n = min(step, 20_000)
            shares = [(count + w, count + n, args.connections) for w in range(args.connections)]
            delta, lat, _, _ = L.run_parallel(server, CreateTask(pool_id, server.host), shares, with_postgres=pg)
            results["create_after_vacuum"] = dict(L.per_op(delta, n, lat), from_users=count, to_users=count + n,
                                                  pg_pool_row=pg_pool_row(args.database_url, schema))
            count += n
        results["rss_kb_at_end"] = server.rss_kb()
        results["vm_hwm_kb_at_end"] = server.status_kb("VmHWM")
        if not pg:
            results["data_bytes_at_end"] = server.data_bytes()
        with open("/proc/loadavg") as f:
            results["machine"]["loadavg_at_end"] = f.read().split()[:3]
    finally:
        server.stop()
        if schema:
            try:
                psql(args.database_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                results["postgres_schema_dropped"] = True
            except Exception as e:  # noqa
                log(f"could not drop schema {schema}: {e}")
    results["markdown"] = markdown(results)
    print(f"Cognate users benchmark ({args.backend}), {L.machine_header(results)}\n")
    print(results["markdown"], flush=True)
    L.write_json(out_path, results)


log = B.log
mb = L.mb


def pool_row(p):
    if not p or "error" in p:
        return "–"
    return f"{p['user_pools_heap_bytes'] / 1e6:.1f} MB / {p['user_pools_dead_tuples']:,}"


def markdown(r):
    out = []
    rows = []
    for s in r["steps"]:
        rows.append([
            f"{s['from_users']:,} → {s['to_users']:,}",
            f"{s['ops_per_s']:,.0f}",
            f"{s['server_cpu_us']:.0f} ({s['server_cpu_us_schedstat']:.0f})",
            f"{s.get('postgres_cpu_us', 0):.0f}" if r["backend"] == "postgres" else "–",
            f"{s['server_cores_busy']:.2f}",
            f"{s['client_cpu_us']:.0f} / {s['client_cores_busy']:.2f}",
            f"{s['latency_median_ms']:.2f} / {s['latency_p99_ms']:.2f}",
            f"{mb(s['rss_kb_end'])} ({mb(s['rss_kb_max'])})",
            "–" if s["data_bytes"] is None else f"{s['data_bytes'] / 1e6:,.0f}",
            f"{s['other_processes_cpu_pct']}",
        ] + ([pool_row(s.get("pg_pool_row"))] if r["backend"] == "postgres" else []))
    out.append(f"AdminCreateUser, {r['connections']} connections, steps of {r['step']:,} "
               f"(goal ≥ {GOAL_CREATE_PER_S:,.0f}/s flat; stack.md ~{REF_CREATE_US:.0f} µs server CPU per call):\n")
    out.append(L.md_table(
        ["users in pool", "users/s", "server CPU µs/call (schedstat)", "postgres CPU µs/call",
         "server cores busy", "client CPU µs/call / cores", "latency median / p99 ms",
         "server RSS MB end (max)", "data dir MB", "other procs CPU %"]
        + (["user_pools heap MB / dead rows"] if r["backend"] == "postgres" else []), rows))
    if r.get("stopped_early"):
        out.append(f"\nStopped early: {r['stopped_early']}.")
    probe_rows = []
    for s in r["steps"]:
        if "list_probe" in s:
            probe_rows.append([f"{s['to_users']:,}"] + [
                f"{s['list_probe'][k]['server_cpu_us']:.0f} / {s['list_probe'][k]['latency_median_ms']:.2f}"
                for k in QUERIES])
    if probe_rows:
        out.append(f"\nListUsers probe after each step ({r['steps'][0]['list_probe'][QUERIES[0]]['ops']} calls per "
                   "kind, one connection): server CPU µs / client latency median ms\n")
        out.append(L.md_table(["users"] + QUERIES, probe_rows))
    if "list_final" in r:
        rows = []
        for k in QUERIES:
            e = r["list_final"][k]
            pg_col = [f"{e.get('postgres_cpu_us', 0):.0f}"] if r["backend"] == "postgres" else []
            rows.append([QUERY_LABEL[k], f"{e['users_returned_mean']:g}",
                         f"{e['server_cpu_us']:.0f} ({e['server_cpu_us_schedstat']:.0f})"] + pg_col +
                        [f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}",
                         "met" if e["latency_p99_ms"] <= GOAL_LIST_MS else "MISSED",
                         f"{e['other_processes_cpu_pct']}"])
        hdr = ["ListUsers, one page (Limit 60)", "users returned", "server CPU µs/call (schedstat)"]
        hdr += ["postgres CPU µs/call"] if r["backend"] == "postgres" else []
        hdr += ["latency median / p99 ms", f"goal ≤ {GOAL_LIST_MS:g} ms (p99)", "other procs CPU %"]
        out.append(f"\nListUsers on the {r['final_users']:,}-user pool, {r['list_rounds']} rounds × "
                   f"{r['list_final'][QUERIES[0]]['ops']} calls per kind, one connection, median round:\n")
        out.append(L.md_table(hdr, rows))
        if "list_final_after_vacuum" in r:
            rows = []
            for k in QUERIES:
                e = r["list_final_after_vacuum"][k]
                rows.append([QUERY_LABEL[k], f"{e['server_cpu_us']:.0f} ({e['server_cpu_us_schedstat']:.0f})",
                             f"{e.get('postgres_cpu_us', 0):.0f}",
                             f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}"])
            out.append(f"\nThe same after `VACUUM user_pools` (that table was {pool_row(r['pg_pool_row_before_vacuum'])}, "
                       f"then {pool_row(r['pg_pool_row_after_vacuum'])}; autovacuum "
                       f"{r['pg_pool_row_before_vacuum'].get('autovacuum')}), one round × "
                       f"{r['list_final_after_vacuum'][QUERIES[0]]['ops']}:\n")
            out.append(L.md_table(["ListUsers", "server CPU µs/call (schedstat)", "postgres CPU µs/call",
                                   "latency median / p99 ms"], rows))
            c = r["create_after_vacuum"]
            out.append(f"\nAdminCreateUser after the vacuum, {c['from_users']:,} → {c['to_users']:,}: "
                       f"{c['ops_per_s']:,.0f}/s, server {c['server_cpu_us']:.0f} µs/call, postgres "
                       f"{c.get('postgres_cpu_us', 0):.0f} µs/call, latency median {c['latency_median_ms']:.2f} ms "
                       f"(user_pools then {pool_row(c['pg_pool_row'])}).")
        c = r["list_concurrent"]
        out.append(f"\nListUsers email prefix from {r['connections']} connections: {c['ops_per_s']:,.0f} calls/s, "
                   f"server {c['server_cpu_us']:.0f} µs/call, {c['server_cores_busy']} server cores busy, "
                   f"latency median {c['latency_median_ms']:.2f} ms, p99 {c['latency_p99_ms']:.2f} ms.")
        out.append(f"\nServer RSS at start {mb(r['rss_kb_at_start'])} MB, at the end {mb(r['rss_kb_at_end'])} MB "
                   f"(VmHWM {mb(r['vm_hwm_kb_at_end'])} MB).")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
