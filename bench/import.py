#!/usr/bin/env python3
"""Cognate benchmark, user import: a user import job of --users users (default 100,000), then
one group of all of them and ListUsersInGroup on it.

On a fresh server, one pool with the default settings, all over the wire API (signed JSON 1.1):
GetCSVHeader; a CSV built in memory with that header, one row per user (cognito:username
userNNNNNNN, email, email_verified=true, name, cognito:mfa_enabled=false,
phone_number_verified=false, the other columns empty); CreateUserImportJob; a plain HTTP PUT of
the CSV (Content-Type text/csv) to the job's PreSignedUrl, as one would to S3; then, between two
CPU snapshots of the server, StartUserImportJob and DescribeUserImportJob every --poll seconds
until the job ends. Reported: the job's duration (CompletionDate - StartDate, and the client's
clock), users/s, server CPU per imported user (utime+stime, and per-thread schedstat), the
ImportedUsers counter seen at each poll. The job must end Succeeded with every user imported.

Then CreateGroup and AdminAddUserToGroup for every imported user from --connections concurrent
keep-alive connections (one client process each), and ListUsersInGroup pages of 60 from one
connection: one walk of the whole group (checks every member is listed once and collects the
pages' NextTokens), then --rounds rounds of --list-calls calls each of the first page, a page
at a random NextToken in the second half of the group, and walks of 20 pages following
NextToken from a random page in the second half; the median round (by server CPU per call).

--backend postgres runs the same against PostgreSQL (a fresh schema, dropped afterwards) and
adds the CPU of the PostgreSQL backends serving the server. Run through bench/run.sh import.
"""

import argparse
import base64
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import time
import urllib.parse

import bench as B
import loadgen as L

GOAL_IMPORT_PER_S = 5000.0
GOAL_PAGE_MS = 10.0
LOGS_ROLE = "arn:aws:iam::123456789012:role/import"
GROUP = "bench-group"
PAGE = 60
WALK_PAGES = 20
DONE = ("Succeeded", "Failed", "Stopped")
KINDS = ["first_page", "deep_page", "walk"]
LABEL = {
    "first_page": "first page (no NextToken)",
    "deep_page": "one page at a random NextToken in the second half",
    "walk": f"walks of {WALK_PAGES} pages following NextToken, from a random page in the second half",
    "full_walk": "one walk of the whole group, every page",
}


def username(i):
    return f"user{i:07d}"


def build_csv(header, n):
    """The CSV of users 1..n, columns in GetCSVHeader's order; values need no quoting."""
    col = {h: i for i, h in enumerate(header)}
    for needed in ("cognito:username", "email"):
        if needed not in col:
            raise RuntimeError(f"GetCSVHeader has no {needed} column: {header}")
    fixed = [""] * len(header)
    for name, value in (("email_verified", "true"), ("cognito:mfa_enabled", "false"),
                        ("phone_number_verified", "false")):
        if name in col:
            fixed[col[name]] = value
    iu, ie, iname = col["cognito:username"], col["email"], col.get("name")
    lines = [",".join(header)]
    for i in range(1, n + 1):
        row = list(fixed)
        name = username(i)
        row[iu] = name
        row[ie] = f"{name}@example.com"
        if iname is not None:
            row[iname] = f"Bench User {i}"
        lines.append(",".join(row))
    return ("\n".join(lines) + "\n").encode()


def put_csv(url, body):
    """A plain HTTP PUT to the pre-signed URL, as to S3; returns seconds."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http":
        raise RuntimeError(f"PreSignedUrl is not plain http: {url}")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
    t = time.perf_counter()
    conn.request("PUT", u.path + ("?" + u.query if u.query else ""), body=body,
                 headers={"Content-Type": "text/csv", "Content-Length": str(len(body))})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"PUT {u.path}: HTTP {resp.status}: {data[:300]!r}")
    return elapsed


def run_import(server, client, pool_id, n, poll, timeout, with_pg):
    """GetCSVHeader, CSV, CreateUserImportJob, PUT, then Start and poll between CPU snapshots."""
    header = client.call("GetCSVHeader", {"UserPoolId": pool_id})["CSVHeader"]
    t = time.perf_counter()
    csv = build_csv(header, n)
    build_s = time.perf_counter() - t
    job = client.call("CreateUserImportJob", {"JobName": "bench-import", "UserPoolId": pool_id,
                                              "CloudWatchLogsRoleArn": LOGS_ROLE})["UserImportJob"]
    job_id = job["JobId"]
    upload_s = put_csv(job["PreSignedUrl"], csv)
    rss0 = server.rss_kb()
    ids = {"UserPoolId": pool_id, "JobId": job_id}
    s0 = L.Snapshot(server, with_pg)
    started = client.call("StartUserImportJob", ids)["UserImportJob"]
    samples, rss_max = [], rss0
    while True:
        time.sleep(poll)
        j = client.call("DescribeUserImportJob", ids)["UserImportJob"]
        elapsed = time.perf_counter() - s0.t
        rss_max = max(rss_max, server.rss_kb())
        samples.append([round(elapsed, 2), j.get("ImportedUsers", 0), j.get("FailedUsers", 0), j["Status"]])
        if j["Status"] in DONE:
            break
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.log_tail()}")
        if elapsed > timeout:
            raise RuntimeError(f"import job still {j['Status']} after {timeout:.0f} s: {j}")
    s1 = L.Snapshot(server, with_pg)
    res = L.per_op(L.cpu_delta(s0, s1, 0), n)
    job_s = j["CompletionDate"] - j["StartDate"]
    moving = [s for s in samples if s[3] not in DONE]
    res.update({
        "job_id": job_id,
        "status": j["Status"],
        "completion_message": j.get("CompletionMessage"),
        "imported_users": j.get("ImportedUsers"),
        "failed_users": j.get("FailedUsers"),
        "skipped_users": j.get("SkippedUsers"),
        "csv_columns": len(header),
        "csv_header": header,
        "csv_bytes": len(csv),
        "csv_build_s": round(build_s, 2),
        "upload_s": round(upload_s, 2),
        "status_after_start": started.get("Status"),
        "job_start_date": j["StartDate"],
        "job_completion_date": j["CompletionDate"],
        "job_wall_s": round(job_s, 3),
        "job_users_per_s": round(n / job_s, 1) if job_s > 0 else None,
        # Start sent -> the poll that saw the end: up to one poll interval more than the job.
        "client_wall_s": round(s1.t - s0.t, 2),
        "client_users_per_s": round(n / (s1.t - s0.t), 1),
        "poll_s": poll,
        "progress_samples": samples,
        "progress_distinct_in_progress": len({s[1] for s in moving}),
        "rss_kb_before": rss0,
        "rss_kb_max_polled": rss_max,
        "rss_kb_after": server.rss_kb(),
    })
    return res


class AddTask:
    """AdminAddUserToGroup for users start, start+stride, ... < stop (signed on the fly)."""

    def __init__(self, pool_id, host):
        self.pool_id, self.host = pool_id, host

    def run(self, client, share, lat, state):
        start, stop, stride = share
        for i in range(start, stop, stride):
            body = json.dumps({"UserPoolId": self.pool_id, "GroupName": GROUP, "Username": username(i)}).encode()
            headers = B.signed_headers(self.host, "AdminAddUserToGroup", body)
            t = time.perf_counter()
            client.send("AdminAddUserToGroup", body, headers)
            lat.append(time.perf_counter() - t)
        return None


def page_payload(pool_id, token):
    p = {"UserPoolId": pool_id, "GroupName": GROUP, "Limit": PAGE}
    if token:
        p["NextToken"] = token
    return p


def walk(server, client, pool_id, starts, max_pages, with_pg, tokens=None, names=None):
    """From each start token (None: the first page), up to max_pages pages following NextToken,
    signed on the fly (this process's CPU counts as client CPU); returns (per_op, users returned)."""
    lat, returned = [], 0
    op = "ListUsersInGroup"
    s0 = L.Snapshot(server, with_pg)
    for token in starts:
        for _ in range(max_pages):
            body = json.dumps(page_payload(pool_id, token)).encode()
            headers = B.signed_headers(server.host, op, body)
            t = time.perf_counter()
            r = json.loads(client.send(op, body, headers))
            lat.append(time.perf_counter() - t)
            returned += len(r["Users"])
            if names is not None:
                names.extend(u["Username"] for u in r["Users"])
            token = r.get("NextToken")
            if not token:
                break
            if tokens is not None:
                tokens.append(token)
    s1 = L.Snapshot(server, with_pg)
    return L.per_op(L.cpu_delta(s0, s1, 0), len(lat), lat), returned


def list_measure(server, client, pool_id, tokens, calls, rounds, with_pg, rng):
    """Per kind: rounds x calls sequential ListUsersInGroup on one connection; median round."""
    op = "ListUsersInGroup"
    deep = tokens[len(tokens) // 2:] or [None]
    walk_from = tokens[len(tokens) // 2:max(len(tokens) // 2 + 1, len(tokens) - WALK_PAGES + 1)] or [None]
    out = {}
    for kind in KINDS:
        # warm-up
        warm = B.presign(server.host, op, [page_payload(pool_id, None if kind == "first_page" else
                                                        rng.choice(deep)) for _ in range(20)])
        L.sequential(server, client, op, warm)
        per_round, returned = [], []
        for _ in range(rounds):
            if kind == "walk":
                starts = [rng.choice(walk_from) for _ in range(max(1, calls // WALK_PAGES))]
                res, got = walk(server, client, pool_id, starts, WALK_PAGES, with_pg)
                returned.append(got / max(1, res["ops"]))
                res["start_tokens"] = len(starts)
            else:
                reqs = B.presign(server.host, op, [page_payload(pool_id, None if kind == "first_page" else
                                                                rng.choice(deep)) for _ in range(calls)])
                res, resp = L.sequential(server, client, op, reqs, with_pg)
                returned.append(sum(len(json.loads(r)["Users"]) for r in resp) / len(resp))
            per_round.append(res)
        med = dict(sorted(per_round, key=lambda r: r["server_cpu_us"])[len(per_round) // 2])
        med["rounds"] = rounds
        for key in ("server_cpu_us", "server_cpu_us_schedstat", "latency_median_ms", "latency_p99_ms",
                    "other_processes_cpu_pct"):
            med[key + "_rounds"] = [r[key] for r in per_round]
        if with_pg:
            med["postgres_cpu_us_rounds"] = [r.get("postgres_cpu_us", 0) for r in per_round]
        med["users_returned_mean"] = round(sum(returned) / len(returned), 1)
        out[kind] = med
    return out


def psql(url, sql):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")  # no NOTICE per dropped table
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql], check=True,
                         stdout=subprocess.PIPE, text=True, env=env)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/test")
    ap.add_argument("--users", type=int, help="users to import (default 100,000; 10,000 with --quick)")
    ap.add_argument("--quick", action="store_true", help="10,000 users and 100 ListUsersInGroup calls per round")
    ap.add_argument("--connections", type=int, default=8, help="connections for AdminAddUserToGroup (default 8)")
    ap.add_argument("--list-calls", type=int, help="ListUsersInGroup calls per kind and round (default 300)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--poll", type=float, default=0.2, help="seconds between DescribeUserImportJob calls")
    ap.add_argument("--timeout", type=float, default=1800, help="give up on the import job after this long")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--out")
    args = ap.parse_args()
    n = args.users or (10_000 if args.quick else 100_000)
    calls = args.list_calls or (100 if args.quick else 300)
    pg = args.backend == "postgres"
    out_path = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                        f"import-{args.backend}.json")
    binary = os.path.abspath(args.bin)
    rng = random.Random(42)

    results = L.base_results(binary, args.wait_quiet)
    results.update({"backend": args.backend, "users": n, "connections": args.connections,
                    "list_calls": calls, "list_rounds": args.rounds, "page": PAGE,
                    "goals": {"import_per_s": GOAL_IMPORT_PER_S, "page_ms": GOAL_PAGE_MS}})
    extra_args, extra_env, schema = [], {}, None
    if pg:
        schema = f"bench_{secrets.token_hex(4)}"
        extra_args = ["--database-url", args.database_url, "--database-schema", schema]
        extra_env = {"COGNATE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
        results["postgres_schema"] = schema
    server = L.Server(binary, extra_args, extra_env)
    try:
        server.wait_ready(timeout=60)
        client = B.Client(server)
        pool_id = client.call("CreateUserPool", {"PoolName": "bench-import"})["UserPool"]["Id"]
        results["pool_id"] = pool_id
        results["rss_kb_at_start"] = server.rss_kb()

        B.wait_quiet(args.wait_quiet)
        log(f"{args.backend}: importing {n:,} users into {pool_id} ...")
        imp = run_import(server, client, pool_id, n, args.poll, args.timeout, pg)
        results["import"] = imp
        log(f"  {imp['status']}: {imp['imported_users']:,} imported, {imp['failed_users']:,} failed in "
            f"{imp['job_wall_s']:.2f} s (client {imp['client_wall_s']:.2f} s): {imp['job_users_per_s']:,.0f} users/s, "
            f"server {imp['server_cpu_us']:.0f} µs/user ({imp['server_cores_busy']} cores), "
            f"other {imp['other_processes_cpu_pct']}%")
        if imp["status"] != "Succeeded" or imp["failed_users"] != 0 or imp["imported_users"] != n:
            raise RuntimeError(f"import job {imp['status']}: {imp['imported_users']} imported, "
                               f"{imp['failed_users']} failed: {imp['completion_message']}")
        pool = client.call("DescribeUserPool", {"UserPoolId": pool_id})["UserPool"]
        results["estimated_users_after_import"] = pool.get("EstimatedNumberOfUsers")
        user = client.call("AdminGetUser", {"UserPoolId": pool_id, "Username": username(n)})
        attrs = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        results["sample_user"] = {"status": user.get("UserStatus"), "email": attrs.get("email"),
                                  "email_verified": attrs.get("email_verified"), "name": attrs.get("name")}
        if attrs.get("email") != f"{username(n)}@example.com" or user.get("UserStatus") != "RESET_REQUIRED":
            raise RuntimeError(f"imported user {username(n)} is not as in the CSV: {user}")
        if not pg:
            results["data_bytes_after_import"] = server.data_bytes()

        client.call("CreateGroup", {"UserPoolId": pool_id, "GroupName": GROUP})
        B.wait_quiet(args.wait_quiet)
        log(f"AdminAddUserToGroup × {n:,}, {args.connections} connections ...")
        shares = [(1 + w, n + 1, args.connections) for w in range(args.connections)]
        delta, lat, _, _ = L.run_parallel(server, AddTask(pool_id, server.host), shares, with_postgres=pg)
        add = L.per_op(delta, n, lat)
        add["connections"] = args.connections
        results["add_to_group"] = add
        log(f"  {add['ops_per_s']:,.0f}/s, server {add['server_cpu_us']:.0f} µs/call "
            f"({add['server_cores_busy']} cores), client {add['client_cpu_us']:.0f} µs/call, "
            f"other {add['other_processes_cpu_pct']}%")

        log("ListUsersInGroup: one walk of the whole group ...")
        tokens, names = [], []
        full, returned = walk(server, client, pool_id, [None], 10 ** 9, pg, tokens, names)
        full["users_returned"] = returned
        full["distinct_users"] = len(set(names))
        results["list_full_walk"] = full
        if returned != n or len(set(names)) != n:
            raise RuntimeError(f"ListUsersInGroup walk listed {returned} users ({len(set(names))} distinct), "
                               f"expected {n}")
        log(f"  {full['ops']} pages, {full['server_cpu_us']:.0f} µs/page, median {full['latency_median_ms']} ms")
        log(f"ListUsersInGroup: {args.rounds} rounds × {calls} per kind ...")
        B.wait_quiet(args.wait_quiet)
        results["list"] = list_measure(server, client, pool_id, tokens, calls, args.rounds, pg, rng)
        for kind in KINDS:
            e = results["list"][kind]
            log(f"  {kind}: {e['server_cpu_us']:.0f} µs/page, median {e['latency_median_ms']} ms, "
                f"p99 {e['latency_p99_ms']} ms")
        client.close()
        results["rss_kb_at_end"] = server.rss_kb()
        results["vm_hwm_kb_at_end"] = server.status_kb("VmHWM")
        with open("/proc/loadavg") as f:
            results["machine"]["loadavg_at_end"] = f.read().split()[:3]
    except BaseException as e:
        results["error"] = f"{type(e).__name__}: {e}"
        L.write_json(out_path, results)
        raise
    finally:
        server.stop()
        if schema:
            try:
                psql(args.database_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                results["postgres_schema_dropped"] = True
            except Exception as e:  # noqa
                log(f"could not drop schema {schema}: {e}")
    results["markdown"] = markdown(results)
    print(f"Cognate import benchmark ({args.backend}), {L.machine_header(results)}\n")
    busy = max(results["import"]["other_processes_cpu_pct"], results["add_to_group"]["other_processes_cpu_pct"],
               *(e["other_processes_cpu_pct"] for e in results["list"].values()))
    if busy > 10 or results["machine"]["cpu_busy_pct_before"] > 10:
        results["warning"] = (f"the machine was busy (other processes up to {busy}% during the measurements): "
                              "CPU figures are not clean (see --wait-quiet)")
        print(f"**WARNING: {results['warning']}**\n")
    print(results["markdown"], flush=True)
    L.write_json(out_path, results)


log = B.log
mb = L.mb


def verdict(ok):
    return "met" if ok else "MISSED"


def progress(samples, most=12):
    """ImportedUsers at the polls, thinned to at most `most` entries (the last one kept)."""
    step = max(1, -(-len(samples) // most))
    picked = samples[::step]
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    return ", ".join(f"{s[0]:g} s: {s[1]:,}" for s in picked)


def markdown(r):
    pg = r["backend"] == "postgres"
    i = r["import"]
    rate = i["job_users_per_s"]
    rows = [
        ["ImportedUsers / FailedUsers", f"{i['imported_users']:,} / {i['failed_users']:,}",
         f"{r['users']:,} / 0", verdict(i["imported_users"] == r["users"] and i["failed_users"] == 0)],
        ["import, job StartDate → CompletionDate", f"{i['job_wall_s']:.2f} s", "", ""],
        [f"import, client clock (StartUserImportJob sent → end seen, polled every {i['poll_s']:g} s)",
         f"{i['client_wall_s']:.2f} s", "", ""],
        ["users/s (job dates)", f"{rate:,.0f}", f"≥ {GOAL_IMPORT_PER_S:,.0f}/s",
         f"{rate / GOAL_IMPORT_PER_S:.2f}× {verdict(rate >= GOAL_IMPORT_PER_S)}"],
        ["users/s (client clock)", f"{i['client_users_per_s']:,.0f}", f"≥ {GOAL_IMPORT_PER_S:,.0f}/s",
         f"{i['client_users_per_s'] / GOAL_IMPORT_PER_S:.2f}×"],
        ["server CPU per imported user, utime+stime (schedstat)",
         f"{i['server_cpu_us']:,.1f} ({i['server_cpu_us_schedstat']:,.1f}) µs", "", ""],
    ]
    if pg:
        rows.append(["PostgreSQL backends' CPU per imported user", f"{i.get('postgres_cpu_us', 0):,.1f} µs", "", ""])
    rows += [
        ["server cores busy during the import", f"{i['server_cores_busy']:.2f}", "", ""],
        ["machine busy / other processes / steal during the import",
         f"{i['machine_busy_pct']}% / {i['other_processes_cpu_pct']}% / {i['steal_cpu_pct']}%", "", ""],
        ["server RSS before → after the import (max polled)",
         f"{mb(i['rss_kb_before'])} → {mb(i['rss_kb_after'])} ({mb(i['rss_kb_max_polled'])}) MB", "", ""],
        ["CSV: columns, size, PUT to the PreSignedUrl",
         f"{i['csv_columns']}, {i['csv_bytes'] / 1e6:.1f} MB, {i['upload_s']:.2f} s", "", ""],
        ["ImportedUsers while polling (distinct values seen in progress)",
         f"{progress(i['progress_samples'])} ({i['progress_distinct_in_progress']})", "", ""],
    ]
    out = [f"User import job of {r['users']:,} users ({r['backend']}), one pool with the default settings:\n",
           L.md_table(["figure", "measured", "goal", "ratio"], rows)]
    a = r["add_to_group"]
    pg_col = [f"{a.get('postgres_cpu_us', 0):,.0f}"] if pg else []
    out.append(f"\nAdminAddUserToGroup, every imported user into one group, {a['connections']} connections:\n")
    out.append(L.md_table(
        ["calls", "calls/s", "server CPU µs/call (schedstat)"] + (["postgres CPU µs/call"] if pg else [])
        + ["server / client cores busy", "client CPU µs/call", "latency median / p99 ms",
           "other procs / steal CPU %"],
        [[f"{a['ops']:,}", f"{a['ops_per_s']:,.0f}", f"{a['server_cpu_us']:,.0f} ({a['server_cpu_us_schedstat']:,.0f})"]
         + pg_col + [f"{a['server_cores_busy']:.2f} / {a['client_cores_busy']:.2f}", f"{a['client_cpu_us']:,.0f}",
                     f"{a['latency_median_ms']:.2f} / {a['latency_p99_ms']:.2f}",
                     f"{a['other_processes_cpu_pct']} / {a['steal_cpu_pct']}"]]))
    rows = []
    entries = [(k, r["list"][k]) for k in KINDS] + [("full_walk", r["list_full_walk"])]
    for kind, e in entries:
        cpu = e["server_cpu_us"] + (e.get("postgres_cpu_us", 0) if pg else 0)
        rng_col = (f"{min(e['server_cpu_us_rounds']):,.0f}–{max(e['server_cpu_us_rounds']):,.0f}"
                   if "server_cpu_us_rounds" in e else "1 round")
        returned = e.get("users_returned_mean", e.get("users_returned", 0) / max(1, e["ops"]))
        rows.append([LABEL[kind], f"{e['ops']:,}", f"{returned:.1f}",
                     f"{e['server_cpu_us']:,.0f} ({e['server_cpu_us_schedstat']:,.0f})"]
                    + ([f"{e.get('postgres_cpu_us', 0):,.0f}"] if pg else [])
                    + [rng_col, f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}",
                       f"{e['latency_p99_ms'] / GOAL_PAGE_MS:.2f}× / {cpu / 1000 / GOAL_PAGE_MS:.2f}× "
                       + verdict(e["latency_p99_ms"] <= GOAL_PAGE_MS and cpu <= GOAL_PAGE_MS * 1000),
                       f"{e['other_processes_cpu_pct']} / {e['steal_cpu_pct']}"])
    hdr = ["ListUsersInGroup, Limit 60", "calls (median round)", "users per page",
           "server CPU µs/page (schedstat)"] + (["postgres CPU µs/page"] if pg else []) + [
           "rounds range µs", "latency median / p99 ms",
           f"goal ≤ {GOAL_PAGE_MS:g} ms: ratio p99 / CPU{' (server + postgres)' if pg else ''}",
           "other procs / steal CPU %"]
    out.append(f"\nListUsersInGroup on the group of {r['users']:,} members, one connection, "
               f"{r['list_rounds']} rounds × {r['list_calls']} calls per kind, median round "
               f"(by server CPU per call); the full walk once:\n")
    out.append(L.md_table(hdr, rows))
    out.append(f"\nServer RSS at start {mb(r['rss_kb_at_start'])} MB, at the end {mb(r['rss_kb_at_end'])} MB "
               f"(VmHWM {mb(r['vm_hwm_kb_at_end'])} MB)"
               + (f"; data dir {r['data_bytes_after_import'] / 1e6:,.0f} MB after the import."
                  if "data_bytes_after_import" in r else "."))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
