#!/usr/bin/env python3
"""Cognate benchmark, Lambda triggers: the server CPU that one PreTokenGeneration V2_0 call adds
to a sign-in and to a token refresh.

One server (SQLite, or PostgreSQL with --backend postgres), two pools with the same --users
confirmed users and a client each (ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH): pool A
has no trigger; pool B has LambdaConfig.PreTokenGenerationConfig V2_0 naming a function that
`[lambda.functions]` (the TOML file) maps to a webhook served by this process. The function
adds a claim to each token and a scope to the access token, as a typical V2 function does; its
own work runs here, in the client process, so the server's CPU counts only Cognate's side of
the call: building the event, the HTTP exchange, reading the answer and applying it.

Measured in --rounds alternating rounds on one keep-alive connection, --requests each:
- InitiateAuth USER_PASSWORD_AUTH in A, then in B (a sign-in: password check, three tokens);
- InitiateAuth REFRESH_TOKEN_AUTH in A, then in B (two tokens: the smallest operation the
  trigger is part of, so the difference stands out most clearly against noise).
The added CPU is B's median round minus A's, per operation. Every B answer is checked to carry
the function's claim (so the trigger ran each time).

Server CPU is utime+stime of the server (schedstat as a cross-check), plus on PostgreSQL its
backends (bench/loadgen.py). Run through bench/run.sh triggers.
"""

import argparse
import base64
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading

import bench as B
import loadgen as L

PASSWORD = "Bench-Passw0rd!"
TEMP_PASSWORD = "Temp-Passw0rd!"
FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:bench-pre-token"
log = B.log

# stack.md has no row for a call the server makes: the nearest is its HTTP floor, one request's
# JSON parse and reply (~16 µs), which a call out does about twice (the event out, the answer in).
REFERENCE_US = 32.0
REFERENCE_NOTE = ("stack.md's HTTP floor (parse JSON + reply, ~16 µs) twice: the event serialised and sent, "
                  "the answer received and parsed")


class Function(http.server.BaseHTTPRequestHandler):
    """The PreTokenGeneration V2_0 function, as a webhook."""

    protocol_version = "HTTP/1.1"
    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        event["response"] = {"claimsAndScopeOverrideDetails": {
            "idTokenGeneration": {"claimsToAddOrOverride": {"tenant": "bench"}},
            "accessTokenGeneration": {"claimsToAddOrOverride": {"tenant": "bench"}, "scopesToAdd": ["bench/read"]},
        }}
        body = json.dumps(event).encode()
        Function.calls += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_function():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Function)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def setup_pool(client, name, users, lambda_config):
    pool = client.call("CreateUserPool", {"PoolName": name, "LambdaConfig": lambda_config})["UserPool"]["Id"]
    app = client.call("CreateUserPoolClient", {
        "UserPoolId": pool, "ClientName": "bench",
        "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    })["UserPoolClient"]["ClientId"]
    for name in users:
        client.call("AdminCreateUser", {"UserPoolId": pool, "Username": name, "TemporaryPassword": TEMP_PASSWORD,
                                        "MessageAction": "SUPPRESS"})
        client.call("AdminSetUserPassword", {"UserPoolId": pool, "Username": name, "Password": PASSWORD,
                                             "Permanent": True})
    return pool, app


def requests_for(app, users, n, flow, refresh=None):
    out = []
    for i in range(n):
        user = users[i % len(users)]
        params = {"REFRESH_TOKEN": refresh[user]} if flow == "REFRESH_TOKEN_AUTH" else \
            {"USERNAME": user, "PASSWORD": PASSWORD}
        body = json.dumps({"AuthFlow": flow, "ClientId": app, "AuthParameters": params}).encode()
        out.append((body, L.unsigned_headers("InitiateAuth")))
    return out


def check(answers, with_trigger):
    for raw in answers:
        token = json.loads(raw)["AuthenticationResult"]["AccessToken"]
        part = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        if ("tenant" in payload) != with_trigger:
            raise RuntimeError(f"the access token {'lacks' if with_trigger else 'has'} the function's claim")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--requests", type=int, default=400, help="requests per operation and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="100 requests, 3 rounds")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    args = ap.parse_args()
    if args.quick:
        args.requests, args.rounds = 100, 3
    function = serve_function()
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write(f'[lambda.functions]\n"{FUNCTION}" = "http://127.0.0.1:{function.server_port}/"\n')
    config.close()
    extra = ["--config", config.name]
    pg = args.backend == "postgres"
    if pg:
        extra += ["--database-url", os.environ.get("COGNATE_BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/test"),
                  "--database-schema", f"bench_triggers_{os.getpid()}"]
    # PostgreSQL nodes must share a master key: this run's is made up.
    extra_env = {"COGNATE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()} if pg else None
    server = L.Server(args.bin, extra_args=extra, extra_env=extra_env)
    try:
        server.wait_ready()
        client = B.Client(server)
        users = [f"user{i:04d}" for i in range(args.users)]
        log(f"setting up two pools with {args.users} users each ...")
        plain = setup_pool(client, "plain", users, {})
        hooked = setup_pool(client, "hooked", users, {
            "PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": FUNCTION}})
        refresh = {}
        for label, (_, app) in (("plain", plain), ("hooked", hooked)):
            refresh[label] = {}
            for user in users:
                answer = L.call_unsigned(client, "InitiateAuth", {
                    "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": app,
                    "AuthParameters": {"USERNAME": user, "PASSWORD": PASSWORD}})
                refresh[label][user] = answer["AuthenticationResult"]["RefreshToken"]
        results = {}
        for flow in ("USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH"):
            rounds = {"plain": [], "hooked": []}
            for r in range(args.rounds):
                for label, (_, app) in (("plain", plain), ("hooked", hooked)):
                    reqs = requests_for(app, users, args.requests, flow, refresh[label])
                    before = Function.calls
                    figures, answers = L.sequential(server, client, "InitiateAuth", reqs, with_postgres=pg)
                    check(answers, label == "hooked")
                    if label == "hooked" and Function.calls - before != len(reqs):
                        raise RuntimeError("the function did not run once per request")
                    rounds[label].append(figures)
                    log(f"{flow} {label} round {r + 1}: {figures['server_cpu_us']} µs server CPU, "
                        f"{figures['ops_per_s']}/s")
            results[flow] = summarize(rounds, pg)
        out = {"backend": args.backend, "users": args.users, "requests": args.requests, "rounds": args.rounds,
               "reference_us": REFERENCE_US, "reference_note": REFERENCE_NOTE, "machine": B.machine(),
               "results": results}
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"triggers-{args.backend}.json")
        with open(path, "w") as f:
            json.dump(out, f, indent=2)
        print(markdown(out))
        log(f"wrote {path}")
    finally:
        server.stop()
        function.shutdown()
        os.unlink(config.name)


def summarize(rounds, pg):
    def median(label, key):
        values = [r.get(key, 0.0) for r in rounds[label]]
        return statistics.median(values)

    cpu = {label: median(label, "server_cpu_us") + (median(label, "postgres_cpu_us") if pg else 0.0)
           for label in rounds}
    return {
        "without_us": round(cpu["plain"], 1),
        "with_us": round(cpu["hooked"], 1),
        "added_us": round(cpu["hooked"] - cpu["plain"], 1),
        "added_ratio_to_reference": round((cpu["hooked"] - cpu["plain"]) / REFERENCE_US, 2),
        "schedstat_without_us": round(median("plain", "server_cpu_us_schedstat"), 1),
        "schedstat_with_us": round(median("hooked", "server_cpu_us_schedstat"), 1),
        "schedstat_added_us": round(median("hooked", "server_cpu_us_schedstat")
                                    - median("plain", "server_cpu_us_schedstat"), 1),
        "ops_per_s_without": median("plain", "ops_per_s"),
        "ops_per_s_with": median("hooked", "ops_per_s"),
        "latency_median_ms_without": median("plain", "latency_median_ms"),
        "latency_median_ms_with": median("hooked", "latency_median_ms"),
        "rounds": rounds,
    }


def markdown(out):
    lines = [
        f"PreTokenGeneration V2_0 ({out['backend']}, {out['requests']} requests x {out['rounds']} rounds, "
        f"median round; reference: {out['reference_note']})",
        "",
        "| operation | server CPU without | with the trigger | added (schedstat) | added / reference "
        "| ops/s without | with |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for flow, r in out["results"].items():
        lines.append(f"| InitiateAuth {flow} | {r['without_us']} µs | {r['with_us']} µs | {r['added_us']} µs "
                     f"({r['schedstat_added_us']} µs) | {r['added_ratio_to_reference']} | {r['ops_per_s_without']} "
                     f"| {r['ops_per_s_with']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
