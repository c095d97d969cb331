"""Where one client's wall time goes: AdminCreateUser, ADMIN_USER_PASSWORD_AUTH and
DescribeUserPool sent back to back over one keep-alive connection, on the durable default
(SQLite, synchronous=FULL) and with --ephemeral (SQLite in memory). For each: wall time and
server CPU per operation, and how many fsync/fdatasync calls the server made per operation
(counted with strace -f when it is installed and --fsyncs is given; strace slows the server,
so those rounds are separate and their times are not reported).

    bench/run.sh wall [-n 300] [--rounds 3] [--fsyncs] [--durable-only]
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time

import bench

PASSWORD = "Passw0rd!y"


class Server(bench.Server):
    """bench.Server with extra serve arguments and an optional strace wrapper."""

    def __init__(self, binary, extra, strace_out=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="cognate-wall-")
        self.data_dir = os.path.join(self.tmp.name, "data")
        self.port = bench.free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.tmp.name, "server.log"), "wb")
        self.t0 = time.perf_counter()
        store = extra if "--ephemeral" in extra else ["--data-dir", self.data_dir] + extra
        args = [binary, "serve", "--listen", self.host] + store
        if strace_out:
            args = ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", strace_out] + args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=bench.clean_env())
        self.pid = self.proc.pid


def workload(n):
    """(label, op, payloads) for each measured step, given the pool and client ids."""
    def steps(pool, client):
        auth = lambda i: {"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                          "AuthParameters": {"USERNAME": f"u{i % 8}", "PASSWORD": PASSWORD}}
        return [
            ("AdminCreateUser", "AdminCreateUser",
             [{"UserPoolId": pool, "Username": f"u{i}", "TemporaryPassword": "Temp0rary!x",
               "MessageAction": "SUPPRESS"} for i in range(n)]),
            ("AdminInitiateAuth (ADMIN_USER_PASSWORD_AUTH)", "AdminInitiateAuth", [auth(i) for i in range(n)]),
            ("DescribeUserPool", "DescribeUserPool", [{"UserPoolId": pool}] * n),
        ]
    return steps


def one_round(binary, extra, n, strace_out=None):
    server = Server(binary, extra, strace_out)
    server.wait_ready(timeout=60 if strace_out else 15)
    client = bench.Client(server)
    try:
        pool = client.call("CreateUserPool", {"PoolName": "wall"})["UserPool"]["Id"]
        app = client.call("CreateUserPoolClient", {
            "UserPoolId": pool, "ClientName": "c",
            "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        })["UserPoolClient"]["ClientId"]
        results = {}
        for label, op, payloads in workload(n)(pool, app):
            if op == "AdminInitiateAuth":
                for u in range(8):
                    client.call("AdminSetUserPassword", {"UserPoolId": pool, "Username": f"u{u}",
                                                         "Password": PASSWORD, "Permanent": True})
                # The pool's first sign-in makes its signing keys: not part of a sign-in's cost.
                for p in payloads[:20]:
                    client.call(op, p)
            requests = bench.presign(server.host, op, payloads)
            mark = count_lines(strace_out)
            lat, wall, _ticks, ns, _other = bench.timed_run(client, server, op, requests)
            lat.sort()
            results[label] = {
                "wall_us": wall / len(requests) * 1e6,
                "cpu_us": ns / len(requests) / 1e3,
                "ops_per_s": len(requests) / wall,
                "p50_ms": lat[len(lat) // 2] * 1e3,
                "fsyncs": (count_lines(strace_out) - mark) / len(requests) if strace_out else None,
            }
        return results
    finally:
        client.close()
        server.stop()


def count_lines(path):
    if not path or not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if "sync(" in line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fsyncs", action="store_true", help="also count fsyncs per operation with strace")
    ap.add_argument("--durable-only", action="store_true", help="skip --ephemeral (for binaries without it)")
    args = ap.parse_args()
    print(f"calibration {bench.calibrate():.1f} ms, {bench.machine()}")
    print("| store | operation | wall µs/op | server CPU µs/op | ops/s | p50 ms | fsyncs/op |")
    print("|---|---|---:|---:|---:|---:|---:|")
    stores = [("durable (SQLite file)", []), ("--ephemeral", ["--ephemeral"])]
    for name, extra in stores[:1] if args.durable_only else stores:
        rounds = [one_round(args.bin, extra, args.n) for _ in range(args.rounds)]
        syncs = {}
        if args.fsyncs and shutil.which("strace"):
            with tempfile.TemporaryDirectory() as d:
                syncs = one_round(args.bin, extra, args.n, os.path.join(d, "strace.out"))
        for label in rounds[0]:
            # The median round by wall time.
            r = sorted((x[label] for x in rounds), key=lambda x: x["wall_us"])[len(rounds) // 2]
            f = syncs.get(label, {}).get("fsyncs")
            print(f"| {name} | {label} | {r['wall_us']:.0f} | {r['cpu_us']:.0f} | {r['ops_per_s']:.0f} | "
                  f"{r['p50_ms']:.2f} | {'' if f is None else f'{f:.2f}'} |")


if __name__ == "__main__":
    main()
