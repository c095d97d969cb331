#!/usr/bin/env python3
"""Cognate benchmark, sign-in: server CPU per login and logins/s.

On a fresh server (SQLite) with one pool of --users confirmed users and one app client
(ALLOW_USER_SRP_AUTH, ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH, no secret):

- USER_SRP_AUTH, full login: InitiateAuth + RespondToAuthChallenge(PASSWORD_VERIFIER), tokens
  issued; the client side of Cognito's SRP is computed here (bench/loadgen.py);
- InitiateAuth USER_SRP_AUTH alone (the first half, to split the login's cost);
- USER_PASSWORD_AUTH (one call, tokens issued);
- REFRESH_TOKEN_AUTH (one call, new ID and access tokens).

Each is measured on one connection (sequential: the cleanest server CPU per operation) and
from --connections concurrent keep-alive connections, one client process each (throughput),
in --rounds rounds; the median round (by server CPU per operation) is reported. Client
processes' own CPU is measured too, since client and server share this machine's cores.
Run through bench/run.sh auth.
"""

import argparse
import os
import random
import sys
import time

import bench as B
import loadgen as L

PASSWORD = "Bench-Passw0rd!"
TEMP_PASSWORD = "Temp-Passw0rd!"
# stack.md "Physical limits per core (server CPU)"
REFERENCE = {
    "srp": {"label": "SRP login, both calls, two tokens signed, refresh token stored", "us": 2650.0, "per_core": 375},
    "password": {"label": "USER_PASSWORD_AUTH checked against the SRP verifier", "us": 1300.0, "per_core": 780},
    "refresh": {"label": "token refresh", "us": 570.0, "per_core": 1750},
}
GOALS_US = {"srp": 3500.0, "refresh": 1000.0}
KINDS = ["srp", "srp_initiate", "password", "refresh"]
LABEL = {
    "srp": "USER_SRP_AUTH login (InitiateAuth + RespondToAuthChallenge)",
    "srp_initiate": "InitiateAuth USER_SRP_AUTH alone (first half)",
    "password": "USER_PASSWORD_AUTH login",
    "refresh": "REFRESH_TOKEN_AUTH",
}


def username(i):
    return f"user{i:06d}"


class SetupTask:
    """AdminCreateUser (temporary password, suppressed message) + AdminSetUserPassword(Permanent)."""

    def __init__(self, pool_id, host):
        self.pool_id, self.host = pool_id, host

    def run(self, client, share, lat, state):
        start, stop, stride = share
        for i in range(start, stop, stride):
            name = username(i)
            t = time.perf_counter()
            client.call("AdminCreateUser", {
                "UserPoolId": self.pool_id, "Username": name, "MessageAction": "SUPPRESS",
                "TemporaryPassword": TEMP_PASSWORD,
                "UserAttributes": [{"Name": "email", "Value": f"{name}@example.com"},
                                   {"Name": "email_verified", "Value": "true"}],
            })
            client.call("AdminSetUserPassword", {"UserPoolId": self.pool_id, "Username": name,
                                                 "Password": PASSWORD, "Permanent": True})
            lat.append(time.perf_counter() - t)


class AuthTask:
    """n operations of one kind per connection, round-robin over the connection's own users.
    setup() (before the clock) signs each of those users in once: it warms the server and
    this client's per-user SRP values, and yields refresh tokens."""

    def __init__(self, kind, pool_id, client_id, users, n):
        self.kind, self.pool_id, self.client_id, self.users, self.n = kind, pool_id, client_id, users, n

    def setup(self, client, share):
        names = self.users[share]
        srp = L.SrpClient(self.pool_id)
        tokens = []
        for name in names:
            tokens.append(L.srp_login(client, srp, self.client_id, name, PASSWORD)["RefreshToken"])
        return srp, names, tokens

    def run(self, client, share, lat, state):
        srp, names, tokens = state
        kind, cid = self.kind, self.client_id
        for j in range(self.n):
            name = names[j % len(names)]
            if kind == "srp":
                L.srp_login(client, srp, cid, name, PASSWORD, lat)
                continue
            t = time.perf_counter()
            if kind == "srp_initiate":
                r = L.call_unsigned(client, "InitiateAuth", {
                    "AuthFlow": "USER_SRP_AUTH", "ClientId": cid,
                    "AuthParameters": {"USERNAME": name, "SRP_A": format(srp.start()[1], "x")}})
                ok = r.get("ChallengeName") == "PASSWORD_VERIFIER"
            elif kind == "password":
                r = L.call_unsigned(client, "InitiateAuth", {
                    "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": cid,
                    "AuthParameters": {"USERNAME": name, "PASSWORD": PASSWORD}})
                ok = "AccessToken" in r.get("AuthenticationResult", {})
            elif kind == "refresh":
                r = L.call_unsigned(client, "InitiateAuth", {
                    "AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": cid,
                    "AuthParameters": {"REFRESH_TOKEN": tokens[j % len(tokens)]}})
                ok = "AccessToken" in r.get("AuthenticationResult", {})
            else:
                raise ValueError(kind)
            lat.append(time.perf_counter() - t)
            if not ok:
                raise RuntimeError(f"{kind}: unexpected answer {str(r)[:300]}")


def measure(server, kind, pool_id, client_id, all_users, conns, per_conn, rounds, users_per_conn,
            client_cpus=None):
    """rounds × (conns × per_conn) operations; returns the median round (by server CPU/op)."""
    users = {w: all_users[w * users_per_conn:(w + 1) * users_per_conn] for w in range(conns)}
    per_round = []
    for _ in range(rounds):
        task = AuthTask(kind, pool_id, client_id, users, per_conn)
        delta, lat, _, samples = L.run_parallel(server, task, list(range(conns)), client_cpus=client_cpus)
        res = L.per_op(delta, conns * per_conn, lat)
        res["rss_kb_max"] = max(s[1] for s in samples) if samples else server.rss_kb()
        per_round.append(res)
    med = dict(sorted(per_round, key=lambda r: r["server_cpu_us"])[len(per_round) // 2])
    med["connections"] = conns
    med["rounds"] = rounds
    for key in ("server_cpu_us", "server_cpu_us_schedstat", "ops_per_s", "client_cpu_us",
                "server_cores_busy", "client_cores_busy", "other_processes_cpu_pct"):
        med[key + "_rounds"] = [r[key] for r in per_round]
    return med


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--users", type=int, default=2000, help="users in the pool (default 2000)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("-n", "--logins", type=int, default=600,
                    help="operations per round on one connection (default 600; the concurrent runs "
                         "do this many per connection / 2, on each connection)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pin", action="store_true",
                    help="server on the last CPU only, client processes on the others: ops/s is then "
                         "what one dedicated server core does, with no client work on it")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not args.out:
        args.out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                "auth-pinned.json" if args.pin else "auth.json")
    ncpu = len(os.sched_getaffinity(0))
    if args.pin and ncpu < 2:
        ap.error("--pin needs at least 2 CPUs")
    all_cpus = sorted(os.sched_getaffinity(0))
    server_cpus = {all_cpus[-1]} if args.pin else None
    client_cpus = set(all_cpus[:-1]) if args.pin else None
    binary = os.path.abspath(args.bin)
    results = L.base_results(binary, args.wait_quiet)
    results.update({"users": args.users, "connections": args.connections, "reference": REFERENCE,
                    "goals_us": GOALS_US, "pinned": bool(args.pin),
                    "server_cpus": sorted(server_cpus) if server_cpus else None,
                    "client_cpus": sorted(client_cpus) if client_cpus else None})
    if L.gmpy2 is None:
        results["warning_client"] = "gmpy2 missing: the client's SRP math is slow Python, so it may limit logins/s"
        B.log(f"WARNING: {results['warning_client']}")
    server = L.Server(binary, cpus=server_cpus)
    try:
        server.wait_ready()
        c = B.Client(server)
        pool_id = c.call("CreateUserPool", {"PoolName": "bench-auth"})["UserPool"]["Id"]
        client_id = c.call("CreateUserPoolClient", {
            "UserPoolId": pool_id, "ClientName": "bench",
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        })["UserPoolClient"]["ClientId"]
        c.close()
        B.log(f"creating {args.users} users ...")
        delta, _, _, _ = L.run_parallel(server, SetupTask(pool_id, server.host),
                                        [(w, args.users, args.connections) for w in range(args.connections)],
                                        client_cpus=client_cpus)
        results["setup_users_per_s"] = round(args.users / delta["wall_s"], 1)
        names = [username(i) for i in range(args.users)]
        random.Random(7).shuffle(names)
        seq_users = min(len(names), 200)
        conc_users = max(1, min(len(names) // args.connections, 100))
        out = {}
        for kind in KINDS:
            B.wait_quiet(args.wait_quiet)
            B.log(f"{kind}: one connection, {args.rounds} × {args.logins} ...")
            seq = measure(server, kind, pool_id, client_id, names, 1, args.logins, args.rounds, seq_users,
                          client_cpus)
            B.wait_quiet(args.wait_quiet)
            per_conn = max(50, args.logins // 2)
            B.log(f"{kind}: {args.connections} connections, {args.rounds} × {args.connections} × {per_conn} ...")
            conc = measure(server, kind, pool_id, client_id, names, args.connections, per_conn, args.rounds,
                           conc_users, client_cpus)
            out[kind] = {"sequential": seq, "concurrent": conc}
            B.log(f"  {kind}: server {seq['server_cpu_us']:.0f} µs/op sequential, {conc['server_cpu_us']:.0f} µs/op "
                  f"concurrent, {conc['ops_per_s']:.0f}/s ({conc['server_cores_busy']} server cores, "
                  f"{conc['client_cores_busy']} client cores, other {conc['other_processes_cpu_pct']}%)")
        results["operations"] = out
        results["rss_kb_at_end"] = server.rss_kb()
        results["nproc"] = os.cpu_count()
        with open("/proc/loadavg") as f:
            results["machine"]["loadavg_at_end"] = f.read().split()[:3]
    finally:
        server.stop()
    results["markdown"] = markdown(results)
    print(f"Cognate sign-in benchmark, {L.machine_header(results)}, client SRP math: {L.BIGINT}\n")
    print(results["markdown"], flush=True)
    L.write_json(args.out, results)


def markdown(r):
    ops = r["operations"]
    rows = []
    for kind in KINDS:
        for mode in ("sequential", "concurrent"):
            e = ops[kind][mode]
            cpu = e["server_cpu_us"]
            ref = REFERENCE.get(kind)
            goal = GOALS_US.get(kind)
            rows.append([
                LABEL[kind], f"{e['connections']}",
                f"{cpu:,.0f} ({e['server_cpu_us_schedstat']:,.0f})",
                f"{min(e['server_cpu_us_rounds']):,.0f}–{max(e['server_cpu_us_rounds']):,.0f}",
                f"{e['ops_per_s']:,.0f}",
                f"{1e6 / cpu:,.0f}" if cpu else "–",
                f"{e['server_cores_busy']:.2f} / {e['client_cores_busy']:.2f}",
                f"{e['client_cpu_us']:,.0f}",
                f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}",
                (f"≤ {goal / 1000:g} ms: " + ("met" if cpu <= goal else "MISSED")) if goal else "–",
                f"{cpu / ref['us']:.2f}× ~{ref['us'] / 1000:g} ms" if ref else "–",
                f"{e['other_processes_cpu_pct']}",
            ])
    hdr = ["operation", "conns", "server CPU µs/op (schedstat)", "rounds range µs", "ops/s",
           "ops/s per server core (1/CPU)", "server / client cores busy", "client CPU µs/op",
           "latency median / p99 ms", "goal", "ratio to stack.md", "other procs CPU %"]
    where = (f"server pinned to CPU {r['server_cpus']}, client processes to CPUs {r['client_cpus']}"
             if r.get("pinned") else f"{r['machine']['nproc']} cores shared by server and client")
    out = [f"{r['users']:,} users, one pool; {ops['srp']['sequential']['rounds']} rounds per row, median round "
           f"(by server CPU per operation). Machine: {where}.\n",
           L.md_table(hdr, rows)]
    srp = ops["srp"]["sequential"]["server_cpu_us"]
    init = ops["srp_initiate"]["sequential"]["server_cpu_us"]
    out.append(f"\nSRP login split (one connection): InitiateAuth {init:,.0f} µs, RespondToAuthChallenge "
               f"≈ {srp - init:,.0f} µs (the difference). stack.md: ~{REFERENCE['srp']['per_core']}/s per core "
               f"for SRP; measured {1e6 / srp:,.0f}/s per server core on one connection, "
               f"{1e6 / ops['srp']['concurrent']['server_cpu_us']:,.0f}/s with {r['connections']} connections.")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
