#!/usr/bin/env python3
"""Cognate benchmark, identity pools: GetId + GetCredentialsForIdentity.

On a fresh server (SQLite, or PostgreSQL with --backend postgres): one user pool with an app
client allowing ADMIN_USER_PASSWORD_AUTH and --users users, each signed in once with
AdminInitiateAuth for an ID token; one identity pool allowing unauthenticated identities, whose
CognitoIdentityProviders names that client, with both roles set by SetIdentityPoolRoles. Then:

1. Guests: GetId without Logins (a new identity each time) followed by GetCredentialsForIdentity
   for it, "the pair"; and each call alone (GetCredentialsForIdentity for existing guests).
2. Signed in: GetId and GetCredentialsForIdentity with the user's ID token in Logins (one RS256
   verification per call), for users whose identity exists (returning users); and each alone.
   Each is measured on one connection (the cleanest server CPU per operation) and from
   --connections concurrent connections (throughput), in --rounds rounds; the median round by
   server CPU per operation is reported.
3. Flatness: the same pool is filled with guest identities (GetId from --fill-connections
   concurrent connections, as fast as the server takes them) up to --identities, and at each
   checkpoint the guest pair, GetCredentialsForIdentity of random older identities, and the
   signed-in pair are measured again on one connection, and the guest pair from --connections.

Setup calls are SigV4-signed with test/test (cognito-idp, cognito-identity); GetId and
GetCredentialsForIdentity are unsigned, as real clients send them, over a minimal keep-alive
HTTP/1.1 client (raw socket: less client CPU on the machine's shared cores than http.client).
Every count of identities is exact: the fill and every measured GetId of a guest add one.
Run through bench/run.sh identity.
"""

import argparse
import base64
import json
import os
import random
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import bench as B
import loadgen as L

ID_SERVICE = "cognito-identity"
ID_PREFIX = "AWSCognitoIdentityService."
PASSWORD = "Bench-Passw0rd!"
TEMP_PASSWORD = "Temp-Passw0rd!"
ROLE_AUTH = "arn:aws:iam::000000000000:role/bench-identity-authenticated"
ROLE_UNAUTH = "arn:aws:iam::000000000000:role/bench-identity-unauthenticated"
GOAL_PAIR_US = 500.0
KINDS = ["guest_pair", "guest_getid", "guest_creds", "auth_pair", "auth_getid", "auth_creds"]
LABEL = {
    "guest_pair": "guest: GetId (new identity) + GetCredentialsForIdentity",
    "guest_getid": "guest: GetId alone (new identity)",
    "guest_creds": "guest: GetCredentialsForIdentity alone (existing identity)",
    "auth_pair": "signed in: GetId + GetCredentialsForIdentity, ID token in Logins",
    "auth_getid": "signed in: GetId alone",
    "auth_creds": "signed in: GetCredentialsForIdentity alone",
}
# stack.md has no identity-pool row: the references are composed from its building blocks.
# SQLite: a durable insert by the group-committing writer ~75 µs, a read-only admin call
# (AdminGetUser) ~50 µs, an RS256 verification ~18 µs. PostgreSQL (server + postgres CPU):
# an insert ~120 + ~160 µs, a read by key ~84 µs.
REFERENCE = {
    "sqlite": {"guest_getid": 75.0, "guest_creds": 50.0, "auth_getid": 68.0, "auth_creds": 68.0},
    "postgres": {"guest_getid": 280.0, "guest_creds": 84.0, "auth_getid": 102.0, "auth_creds": 102.0},
}
for _r in REFERENCE.values():
    _r["guest_pair"] = _r["guest_getid"] + _r["guest_creds"]
    _r["auth_pair"] = _r["auth_getid"] + _r["auth_creds"]
REFERENCE_NOTE = {
    "sqlite": ("composed from stack.md: GetId of a guest = one group-committed durable insert (~75 µs); "
               "GetCredentialsForIdentity = a read-only call (~50 µs, AdminGetUser's); a signed-in call = "
               "a read-only call + one RS256 verification (~18 µs); server CPU"),
    "postgres": ("composed from stack.md: GetId of a guest = a PostgreSQL insert (~120 µs server + ~160 µs "
                 "postgres); any other call = a read by key (~84 µs); + ~18 µs per RS256 verification; "
                 "server + postgres CPU"),
}
log = B.log


# --- a minimal keep-alive HTTP/1.1 client for the unsigned calls -------------------------

class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"127.0.0.1:{port}"
        self.buf = b""

    def request(self, op, body):
        """The bytes of one unsigned JSON 1.1 call."""
        if isinstance(body, str):
            body = body.encode()
        return (f"POST / HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: {B.CONTENT_TYPE}\r\n"
                f"X-Amz-Target: {ID_PREFIX}{op}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    def exchange(self, req):
        """Sends one request; returns (status, head, body): status an int, head the response's
        header lines as sent (bytes, original case), body the Content-Length bytes."""
        self.sock.sendall(req)
        buf = self.buf
        while True:
            i = buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("server closed the connection")
            buf += chunk
        head = buf[:i]
        rest = buf[i + 4:]
        low = head.lower()
        j = low.find(b"\r\ncontent-length:")
        if j < 0:
            raise RuntimeError(f"no Content-Length: {head[:300]!r}")
        end = low.find(b"\r\n", j + 2)
        n = int(low[j + 17:end if end > 0 else len(low)])
        while len(rest) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("server closed the connection")
            rest += chunk
        body, self.buf = rest[:n], rest[n:]
        # The server said it closes the connection: the caller must not use it again.
        self.closing = b"\r\nconnection: close" in low
        return int(head[9:12]), head, body

    def roundtrip(self, req):
        """Sends one request, returns the response body; anything but a 200 raises."""
        status, _, body = self.exchange(req)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {req[:120]!r} -> {body[:300]!r}")
        if self.closing:
            raise RuntimeError("server closed the keep-alive connection")
        return body

    def close(self):
        self.sock.close()


def get_id_req(conn, pool_id, logins=None):
    p = {"IdentityPoolId": pool_id}
    if logins:
        p["Logins"] = logins
    return conn.request("GetId", json.dumps(p))


def creds_req(conn, identity_id, logins=None):
    p = {"IdentityId": identity_id}
    if logins:
        p["Logins"] = logins
    return conn.request("GetCredentialsForIdentity", json.dumps(p))


def identity_of(body):
    return json.loads(body)["IdentityId"]


def check_creds(body):
    if b'"SessionToken"' not in body or b'"SecretKey"' not in body:
        raise RuntimeError(f"GetCredentialsForIdentity: no credentials: {body[:300]!r}")


# --- signed calls --------------------------------------------------------------------------

def id_call(client, op, payload):
    """A SigV4-signed cognito-identity call on a bench.Client."""
    body = json.dumps(payload).encode()
    headers = B.signed_headers(client.server.host, op, body, service=ID_SERVICE, target_prefix=ID_PREFIX)
    return json.loads(client.send(op, body, headers))


def sign_in(client, pool_id, client_id, names):
    """One AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH per user: {username: ID token}."""
    out = {}
    for name in names:
        r = client.call("AdminInitiateAuth", {
            "UserPoolId": pool_id, "ClientId": client_id, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": name, "PASSWORD": PASSWORD}})
        out[name] = r["AuthenticationResult"]["IdToken"]
    return out


# --- the load ----------------------------------------------------------------------------

class Task:
    """n operations of one kind per connection. share = the connection's index.

    ctx: pool id, provider name, {share: [ID tokens]} for signed-in kinds, and optionally
    {share: [identity ids]} of existing guests for guest_creds (else setup makes 100)."""

    def __init__(self, kind, ctx, n):
        self.kind, self.ctx, self.n = kind, ctx, n

    def setup(self, client, share):
        client.close()  # the unsigned calls use Conn
        conn = Conn(client.server.port)
        ctx, kind = self.ctx, self.kind
        pool = ctx["pool_id"]
        state = {"conn": conn, "get_id": get_id_req(conn, pool)}
        if kind == "guest_creds":
            ids = (ctx.get("guest_ids") or {}).get(share)
            if not ids:
                ids = [identity_of(conn.roundtrip(state["get_id"])) for _ in range(100)]
            state["creds"] = [creds_req(conn, i) for i in ids]
        if kind.startswith("auth_"):
            gets, creds = [], []
            for token in ctx["tokens"][share]:
                logins = {ctx["provider"]: token}
                g = get_id_req(conn, pool, logins)
                # The user's identity exists before the clock starts (a returning user).
                iid = identity_of(conn.roundtrip(g))
                gets.append(g)
                creds.append(creds_req(conn, iid, logins))
            state["gets"], state["creds"] = gets, creds
        return state

    def run(self, client, share, lat, state):
        conn, kind, n = state["conn"], self.kind, self.n
        rt, pc = conn.roundtrip, time.perf_counter
        if kind == "guest_pair":
            g = state["get_id"]
            for _ in range(n):
                t = pc()
                iid = identity_of(rt(g))
                check_creds(rt(creds_req(conn, iid)))
                lat.append(pc() - t)
        elif kind == "guest_getid":
            g = state["get_id"]
            for _ in range(n):
                t = pc()
                body = rt(g)
                lat.append(pc() - t)
                if b'"IdentityId"' not in body:
                    raise RuntimeError(f"GetId: {body[:300]!r}")
        elif kind == "guest_creds" or kind == "auth_creds":
            reqs = state["creds"]
            for j in range(n):
                t = pc()
                body = rt(reqs[j % len(reqs)])
                lat.append(pc() - t)
                check_creds(body)
        elif kind == "auth_getid":
            reqs = state["gets"]
            for j in range(n):
                t = pc()
                body = rt(reqs[j % len(reqs)])
                lat.append(pc() - t)
                if b'"IdentityId"' not in body:
                    raise RuntimeError(f"GetId: {body[:300]!r}")
        elif kind == "auth_pair":
            gets, creds = state["gets"], state["creds"]
            for j in range(n):
                k = j % len(gets)
                t = pc()
                rt(gets[k])
                check_creds(rt(creds[k]))
                lat.append(pc() - t)
        else:
            raise ValueError(kind)
        conn.close()


def creates(kind):
    """Identities each operation of this kind adds to the pool."""
    return 1 if kind in ("guest_pair", "guest_getid") else 0


class FillTask:
    """GetId of new guests, n per connection (share = n); keeps every sample_every-th id."""

    def __init__(self, pool_id, sample_every):
        self.pool_id, self.sample_every = pool_id, sample_every

    def setup(self, client, share):
        client.close()
        conn = Conn(client.server.port)
        return conn, get_id_req(conn, self.pool_id)

    def run(self, client, n, lat, state):
        conn, req = state
        rt, pc = conn.roundtrip, time.perf_counter
        every = self.sample_every
        kept = []
        for j in range(n):
            t = pc()
            body = rt(req)
            lat.append(pc() - t)
            if j % every == 0:
                kept.append(identity_of(body))
            elif b'"IdentityId"' not in body:
                raise RuntimeError(f"GetId: {body[:300]!r}")
        conn.close()
        return kept


# --- measurement ---------------------------------------------------------------------------

def measure(server, kind, ctx, conns, per_conn, rounds, pg):
    """rounds × (conns × per_conn) operations; the median round by server CPU per operation.
    Returns (result, identities added, including the setup's)."""
    per_round, added = [], 0
    for _ in range(rounds):
        delta, lat, _, samples = L.run_parallel(server, Task(kind, ctx, per_conn), list(range(conns)),
                                                with_postgres=pg)
        res = L.per_op(delta, conns * per_conn, lat)
        res["rss_kb_max"] = max(s[1] for s in samples) if samples else server.rss_kb()
        per_round.append(res)
        added += conns * per_conn * creates(kind)
        if kind == "guest_creds" and not (ctx.get("guest_ids") or {}):
            added += conns * 100
    med = dict(sorted(per_round, key=lambda r: r["server_cpu_us"])[len(per_round) // 2])
    med["connections"] = conns
    med["rounds"] = rounds
    for key in ("server_cpu_us", "server_cpu_us_schedstat", "ops_per_s", "client_cpu_us", "postgres_cpu_us",
                "latency_median_ms", "latency_p99_ms", "other_processes_cpu_pct"):
        if key in per_round[0]:
            med[key + "_rounds"] = [r.get(key) for r in per_round]
    return med, added


def split_tokens(tokens, conns):
    """{connection: its users' tokens}: users dealt round-robin, at least one each."""
    tokens = list(tokens)
    return {w: [tokens[(w + k * conns) % len(tokens)] for k in range(max(1, len(tokens) // conns))]
            for w in range(conns)}


def merge_deltas(ds):
    out = {k: sum(d[k] for d in ds) for k in ("wall_s", "server_ticks", "server_ns", "postgres_ticks",
                                               "client_ticks")}
    wall = max(1e-9, out["wall_s"])
    for k in ("other_pct", "irq_pct", "steal_pct", "machine_busy_pct"):
        out[k] = round(sum(d[k] * d["wall_s"] for d in ds) / wall, 1)
    out["postgres_backends"] = max(d["postgres_backends"] for d in ds)
    return out


def data_bytes(server, pg):
    return None if pg else server.data_bytes()


def sqlite_file(data_dir):
    for dirpath, _, files in os.walk(data_dir):
        for f in files:
            if f.endswith((".db", ".sqlite", ".sqlite3")):
                return os.path.join(dirpath, f)
    return None


def count_identities(server, pg, url, schema, pool_id):
    """The identities the store holds for the pool, counted in the database itself."""
    try:
        if pg:
            return int(psql(url, f"SELECT count(*) FROM {schema}.identities WHERE identity_pool_id = '{pool_id}'"))
        path = sqlite_file(server.data_dir)
        if not path:
            return None
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute("SELECT count(*) FROM identities WHERE identity_pool_id = ?", (pool_id,)).fetchone()[0]
        finally:
            db.close()
    except Exception as e:  # noqa: a cross-check only
        log(f"could not count identities: {e}")
        return None


def psql(url, sql):
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql], check=True,
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def pg_tables(url, schema):
    """PostgreSQL only: heap size and dead row versions of the identity tables (the count shards
    are rewritten by every new identity; this machine's PostgreSQL may run without autovacuum)."""
    try:
        rows = psql(url, f"SELECT relname, pg_relation_size(relid), pg_total_relation_size(relid), n_dead_tup "
                         f"FROM pg_stat_user_tables WHERE schemaname = '{schema}' AND relname IN "
                         f"('identities', 'identity_logins', 'identity_count_shards')")
        out = {}
        for line in rows.splitlines():
            name, heap, total, dead = line.split("|")
            out[name] = {"heap_bytes": int(heap), "total_bytes": int(total), "dead_tuples": int(dead)}
        out["autovacuum"] = psql(url, "SHOW autovacuum")
        return out
    except Exception as e:  # noqa: diagnostics only
        return {"error": str(e)}


def probe(server, ctx, count, old_ids, args, pg, rng):
    """At one pool size: the guest pair, GetCredentialsForIdentity of random older identities and
    the signed-in pair on one connection, the guest pair from --connections."""
    n, rounds = args.probe, args.probe_rounds
    out = {"identities": count, "rss_kb_start": server.rss_kb()}
    added = 0
    out["guest_pair"], a = measure(server, "guest_pair", ctx, 1, n, rounds, pg)
    added += a
    c = dict(ctx)
    if old_ids:
        picks = [rng.choice(old_ids) for _ in range(n)]
        c["guest_ids"] = {0: picks}
    out["old_creds"], a = measure(server, "guest_creds", c, 1, n, rounds, pg)
    out["old_creds"]["random_old_identities"] = bool(old_ids)
    added += a
    out["auth_pair"], a = measure(server, "auth_pair", dict(ctx, tokens={0: ctx["all_tokens"]}), 1, n, rounds, pg)
    added += a
    per_conn = max(50, n // 2)
    out["guest_pair_concurrent"], a = measure(server, "guest_pair", ctx, args.connections, per_conn, 1, pg)
    added += a
    out["rss_kb_end"] = server.rss_kb()
    out["data_bytes"] = data_bytes(server, pg)
    if pg:
        out["pg_tables"] = pg_tables(args.database_url, args.schema)
    out["added"] = added
    return out, added


def checkpoints(args):
    if args.steps:
        pts = sorted({int(x.replace("_", "")) for x in args.steps.split(",")})
    else:
        pts = sorted({max(1, int(args.identities * f)) for f in (0.01, 0.1, 0.25, 0.5, 0.75, 1.0)})
    return [p for p in pts if p <= args.identities]


# --- fsyncs per operation (optional) --------------------------------------------------------

class StraceServer(L.Server):
    """L.Server under strace -f counting fsync/fdatasync (the pid is strace's: no CPU figures)."""

    def __init__(self, binary, out):  # noqa: no super()
        self.tmp = tempfile.TemporaryDirectory(prefix="cognate-bench-")
        self.data_dir = os.path.join(self.tmp.name, "data")
        self.port = B.free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.tmp.name, "server.log"), "wb")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", out,
             binary, "serve", "--listen", self.host, "--data-dir", self.data_dir],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=B.clean_env())
        self.pid = self.proc.pid
        self.cpus = None

    def stop(self):
        # Terminating strace would only detach it and leave the server running: stop the
        # server (strace's child), and strace exits with it.
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = [int(x) for x in f.read().split()]
        except OSError:
            children = []
        for child in children:
            try:
                os.kill(child, 15)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        super().stop()


def count_syncs(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if "sync(" in line)


def fsyncs_per_op(binary, users, n):
    """SQLite: fsync/fdatasync calls of the server per operation, one connection, n each."""
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "strace.out")
        server = StraceServer(binary, trace)
        try:
            server.wait_ready(timeout=60)
            ctx = setup(server, users)
            out = {}
            for kind in KINDS:
                c = dict(ctx, tokens={0: ctx["all_tokens"]})
                # guest_creds's and the signed-in kinds' setup calls happen before the mark
                task = Task(kind, c, n)
                state = task.setup(B.Client(server), 0)
                mark = count_syncs(trace)
                task.run(None, 0, [], state)
                time.sleep(0.2)
                out[kind] = round((count_syncs(trace) - mark) / n, 2)
                log(f"  fsyncs per {kind}: {out[kind]}")
            return out
        finally:
            server.stop()


# --- setup ---------------------------------------------------------------------------------

def setup(server, users, fsync_run=False):
    c = B.Client(server)
    try:
        up = c.call("CreateUserPool", {"PoolName": "bench-identity"})["UserPool"]["Id"]
        cid = c.call("CreateUserPoolClient", {
            "UserPoolId": up, "ClientName": "bench-identity",
            "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        })["UserPoolClient"]["ClientId"]
        names = [f"user{i:03d}" for i in range(users)]
        for name in names:
            c.call("AdminCreateUser", {
                "UserPoolId": up, "Username": name, "MessageAction": "SUPPRESS",
                "TemporaryPassword": TEMP_PASSWORD,
                "UserAttributes": [{"Name": "email", "Value": f"{name}@example.com"},
                                   {"Name": "email_verified", "Value": "true"}]})
            c.call("AdminSetUserPassword", {"UserPoolId": up, "Username": name, "Password": PASSWORD,
                                            "Permanent": True})
        provider = f"cognito-idp.{B.REGION}.amazonaws.com/{up}"
        pool = id_call(c, "CreateIdentityPool", {
            "IdentityPoolName": "bench identity", "AllowUnauthenticatedIdentities": True,
            "CognitoIdentityProviders": [{"ProviderName": provider, "ClientId": cid,
                                          "ServerSideTokenCheck": False}],
        })
        pool_id = pool["IdentityPoolId"]
        id_call(c, "SetIdentityPoolRoles", {"IdentityPoolId": pool_id,
                                            "Roles": {"authenticated": ROLE_AUTH, "unauthenticated": ROLE_UNAUTH}})
        tokens = sign_in(c, up, cid, names)
    finally:
        c.close()
    # A check of the whole flow before anything is timed: a guest and a signed-in user get
    # credentials for the right roles.
    conn = Conn(server.port)
    try:
        guest = identity_of(conn.roundtrip(get_id_req(conn, pool_id)))
        body = json.loads(conn.roundtrip(creds_req(conn, guest)))
        if body.get("IdentityId") != guest or not body.get("Credentials", {}).get("SessionToken"):
            raise RuntimeError(f"guest credentials: {body}")
        # Every user's identity is made here (first sign-in), so the measured calls are a
        # returning user's.
        for name in names:
            logins = {provider: tokens[name]}
            signed = identity_of(conn.roundtrip(get_id_req(conn, pool_id, logins)))
            again = identity_of(conn.roundtrip(get_id_req(conn, pool_id, logins)))
            if signed != again or signed == guest:
                raise RuntimeError(f"GetId with the same login gave two identities: {signed}, {again}")
            body = json.loads(conn.roundtrip(creds_req(conn, signed, logins)))
            if body.get("IdentityId") != signed or not body.get("Credentials", {}).get("SessionToken"):
                raise RuntimeError(f"signed-in credentials: {body}")
    finally:
        conn.close()
    return {"user_pool_id": up, "client_id": cid, "pool_id": pool_id, "provider": provider,
            "names": names, "all_tokens": [tokens[n] for n in names],
            "initial_identities": 1 + len(names)}


def refresh_tokens(server, ctx):
    """New ID tokens (they last an hour; a long fill outlives them)."""
    c = B.Client(server)
    try:
        t = sign_in(c, ctx["user_pool_id"], ctx["client_id"], ctx["names"])
    finally:
        c.close()
    ctx["all_tokens"] = [t[n] for n in ctx["names"]]
    ctx["tokens_at"] = time.monotonic()


# --- main ----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/test")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: --identities 20000, 500 operations per round, probes of 300")
    ap.add_argument("--identities", type=int, help="pool size to fill to (default 1,000,000; --quick 20,000)")
    ap.add_argument("--steps", help="comma-separated pool sizes to probe at (default 1%%, 10%%, 25%%, 50%%, "
                                    "75%% and 100%% of --identities)")
    ap.add_argument("--users", type=int, default=16, help="signed-in users (default 16)")
    ap.add_argument("--connections", type=int, default=4, help="concurrent clients for throughput (default 4)")
    ap.add_argument("--fill-connections", type=int, default=64,
                    help="concurrent GetId clients filling the pool (default 64: the group commit takes them in batches)")
    ap.add_argument("-n", "--ops", type=int, help="operations per round on one connection (default 2000; "
                                                  "--quick 500); the concurrent runs do half that per connection")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--probe", type=int, help="operations per probe round at each checkpoint (default 1000; "
                                              "--quick 300)")
    ap.add_argument("--probe-rounds", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=50_000, help="GetId calls per fill chunk (the time budget is "
                                                              "checked between chunks)")
    ap.add_argument("--fill-minutes", type=float, default=30.0,
                    help="stop filling when the next chunk would end past this many minutes since the "
                         "fill began, probes included (default 30); the last probe is then at the size reached")
    ap.add_argument("--fsyncs", action="store_true",
                    help="also count the server's fsyncs per operation with strace (SQLite, a separate server)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--out")
    args = ap.parse_args()
    pg = args.backend == "postgres"
    if args.identities is None:
        args.identities = 20_000 if args.quick else 1_000_000
    args.ops = args.ops or (500 if args.quick else 2000)
    args.probe = args.probe or (300 if args.quick else 1000)
    out_path = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                        f"identity-{args.backend}.json")
    binary = os.path.abspath(args.bin)
    rng = random.Random(42)
    budget = 60 * args.fill_minutes

    results = L.base_results(binary, args.wait_quiet)
    results.update({
        "backend": args.backend, "connections": args.connections, "fill_connections": args.fill_connections,
        "users": args.users, "ops_per_round": args.ops, "rounds": args.rounds, "probe": args.probe,
        "probe_rounds": args.probe_rounds, "target_identities": args.identities, "fill_budget_s": budget,
        "goal_guest_pair_us": GOAL_PAIR_US, "reference_us": REFERENCE[args.backend],
        "reference_note": REFERENCE_NOTE[args.backend],
    })
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        results["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           cwd=here).stdout.strip()
        # Uncommitted changes to the server's sources (the binary was built from the working tree).
        results["uncommitted_server_sources"] = subprocess.run(
            ["git", "status", "--porcelain", "--", "crates", "Cargo.toml", "Cargo.lock"], capture_output=True,
            text=True, cwd=here).stdout.split("\n")[:-1]
    except OSError:
        pass
    if args.fsyncs and not pg:
        if shutil.which("strace"):
            log("fsyncs per operation (a separate server under strace) ...")
            results["fsyncs_per_op"] = fsyncs_per_op(binary, min(args.users, 8), 200)
        else:
            log("strace not installed: no fsync counts")
    extra_args, extra_env, schema = [], {}, None
    if pg:
        schema = f"bench_{secrets.token_hex(4)}"
        extra_args = ["--database-url", args.database_url, "--database-schema", schema]
        extra_env = {"COGNATE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
        results["postgres_schema"] = schema
    args.schema = schema
    server = L.Server(binary, extra_args, extra_env)
    try:
        server.wait_ready(timeout=60)
        ctx = setup(server, args.users)
        ctx["tokens_at"] = time.monotonic()
        count = ctx["initial_identities"]  # the check's guest and one identity per user
        results["identity_pool_id"] = ctx["pool_id"]
        results["rss_kb_at_start"] = server.rss_kb()
        log(f"{args.backend}: identity pool {ctx['pool_id']}, {args.users} users signed in")

        # Probe on the (nearly) empty pool.
        probes = []
        results["probes"] = probes
        p, added = probe(server, ctx, count, [], args, pg, rng)
        count += added
        probes.append(p)
        log_probe(p)

        # The headline figures.
        ops = {}
        for kind in KINDS:
            B.wait_quiet(args.wait_quiet)
            if kind.startswith("auth_") and time.monotonic() - ctx["tokens_at"] > 1800:
                refresh_tokens(server, ctx)
            entry = {"identities_at_start": count}
            for mode, conns, per_conn in (("sequential", 1, args.ops),
                                          ("concurrent", args.connections, max(50, args.ops // 2))):
                c = dict(ctx, tokens={0: ctx["all_tokens"]} if conns == 1 else split_tokens(ctx["all_tokens"], conns))
                log(f"{kind}: {conns} connection(s), {args.rounds} × {conns} × {per_conn} ...")
                res, added = measure(server, kind, c, conns, per_conn, args.rounds, pg)
                count += added
                entry[mode] = res
                log(f"  server {res['server_cpu_us']:.0f} µs/op ({res['server_cpu_us_schedstat']:.0f} schedstat)"
                    + (f" + postgres {res.get('postgres_cpu_us', 0):.0f}" if pg else "")
                    + f", {res['ops_per_s']:.0f}/s, latency {res['latency_median_ms']:.2f} / "
                    f"{res['latency_p99_ms']:.2f} ms, other {res['other_processes_cpu_pct']}%")
            ops[kind] = entry
        results["operations"] = ops
        results["identities_after_headline"] = count
        L.write_json(out_path, results)

        # Fill, with a probe at each checkpoint.
        fills = []
        results["fill"] = fills
        old_ids = []
        t_fill = time.monotonic()
        filled_wall = 0.0
        last_chunk = (0.0, 1)
        stopped = False
        sample_every = 50
        for target in checkpoints(args):
            if target <= count or stopped:
                continue
            step = {"from_identities": count, "chunks": []}
            deltas, lats = [], []
            while count < target:
                n = min(args.chunk, target - count)
                elapsed = time.monotonic() - t_fill
                if last_chunk[0] and elapsed + last_chunk[0] * n / last_chunk[1] > budget:
                    results["stopped_early"] = (f"fill budget of {budget:.0f} s reached after {elapsed:.0f} s "
                                                f"at {count:,} identities (target {args.identities:,})")
                    log(results["stopped_early"])
                    stopped = True
                    break
                f = args.fill_connections
                shares = [n // f + (1 if w < n % f else 0) for w in range(f)]
                delta, lat, extras, _ = L.run_parallel(server, FillTask(ctx["pool_id"], sample_every),
                                                       [s for s in shares if s], with_postgres=pg)
                for e in extras:
                    old_ids.extend(e)
                deltas.append(delta)
                lats.append(lat)
                last_chunk = (delta["wall_s"], n)
                filled_wall += delta["wall_s"]
                count += n
                step["chunks"].append({"to": count, "per_s": round(n / delta["wall_s"], 1)})
                log(f"  fill → {count:,}: {n / delta['wall_s']:.0f} GetId/s, server "
                    f"{delta['server_ticks'] / B.CLK_TCK / n * 1e6:.0f} µs/call, other {delta['other_pct']}%")
            if not deltas:
                break
            allat = [x for lt in lats for x in lt]
            step.update(L.per_op(merge_deltas(deltas), count - step["from_identities"], allat))
            step["to_identities"] = count
            step["rss_kb_end"] = server.rss_kb()
            step["data_bytes"] = data_bytes(server, pg)
            fills.append(step)
            if time.monotonic() - ctx["tokens_at"] > 1800:
                refresh_tokens(server, ctx)
            B.wait_quiet(args.wait_quiet)
            p, added = probe(server, ctx, count, old_ids, args, pg, rng)
            count += added
            probes.append(p)
            log_probe(p)
            L.write_json(out_path, results)
        results["fill_wall_s"] = round(filled_wall, 1)
        results["fill_elapsed_s"] = round(time.monotonic() - t_fill, 1)
        results["final_identities"] = count
        results["identities_counted_in_store"] = count_identities(server, pg, args.database_url, schema,
                                                                  ctx["pool_id"])
        log(f"identities: {count:,} by the client's count, {results['identities_counted_in_store']} in the store")
        results["rss_kb_at_end"] = server.rss_kb()
        results["vm_hwm_kb_at_end"] = server.status_kb("VmHWM")
        results["data_bytes_at_end"] = data_bytes(server, pg)
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
    dirty = results.get("uncommitted_server_sources")
    print(f"Cognate identity-pool benchmark ({args.backend}), {L.machine_header(results)}, "
          f"commit {results.get('commit', '?')}" + (f" with uncommitted changes to {len(dirty)} server file(s)"
                                                     if dirty else "") + "\n")
    print(results["markdown"], flush=True)
    L.write_json(out_path, results)


def log_probe(p):
    log(f"  probe at {p['identities']:,}: guest pair {p['guest_pair']['server_cpu_us']:.0f} µs / "
        f"{p['guest_pair']['latency_median_ms']:.2f} ms, older creds {p['old_creds']['server_cpu_us']:.0f} µs / "
        f"{p['old_creds']['latency_median_ms']:.2f} ms, signed-in pair {p['auth_pair']['server_cpu_us']:.0f} µs / "
        f"{p['auth_pair']['latency_median_ms']:.2f} ms, guest pairs/s ({p['guest_pair_concurrent']['connections']} "
        f"conns) {p['guest_pair_concurrent']['ops_per_s']:.0f}")


# --- report ------------------------------------------------------------------------------

def cpu_cell(e, pg):
    s = f"{e['server_cpu_us']:,.0f} ({e['server_cpu_us_schedstat']:,.0f})"
    if pg:
        s += f" + {e.get('postgres_cpu_us', 0):,.0f}"
    return s


def total_cpu(e, pg):
    return e["server_cpu_us"] + (e.get("postgres_cpu_us", 0) if pg else 0)


def pg_cell(t):
    if not t or "error" in t or "identities" not in t:
        return "–"
    sh = t.get("identity_count_shards", {})
    return (f"{t['identities']['total_bytes'] / 1e6:,.0f} / {sh.get('heap_bytes', 0) / 1e3:,.0f} kB, "
            f"{sh.get('dead_tuples', 0):,}")


def markdown(r):
    pg = r["backend"] == "postgres"
    ref = r["reference_us"]
    out = []
    ops = r.get("operations", {})
    if ops:
        rows = []
        for kind in KINDS:
            for mode in ("sequential", "concurrent"):
                e = ops[kind][mode]
                cpu = total_cpu(e, pg)
                goal = "–"
                if kind == "guest_pair":
                    goal = f"≤ {GOAL_PAIR_US / 1000:g} ms: " + ("met" if cpu <= GOAL_PAIR_US else "MISSED")
                rows.append([
                    LABEL[kind], f"{e['connections']}", cpu_cell(e, pg),
                    f"{min(e['server_cpu_us_rounds']):,.0f}–{max(e['server_cpu_us_rounds']):,.0f}",
                    f"{e['ops_per_s']:,.0f}", f"{1e6 / cpu:,.0f}" if cpu else "–",
                    f"{e['server_cores_busy']:.2f} / {e['client_cores_busy']:.2f}",
                    f"{e['client_cpu_us']:,.0f}",
                    f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}",
                    goal, f"{cpu / ref[kind]:.1f}× ~{ref[kind]:g} µs",
                    f"{e['other_processes_cpu_pct']}",
                ])
        cpu_hdr = "server CPU µs/op (schedstat)" + (" + postgres" if pg else "")
        hdr = ["operation", "conns", cpu_hdr, "rounds range µs (server)", "ops/s",
               "ops/s per core (1/CPU)", "server / client cores busy", "client CPU µs/op",
               "latency median / p99 ms", "goal", "ratio to stack.md composite", "other procs CPU %"]
        out.append(f"{r['backend']}; {r['users']} signed-in users; {r['rounds']} rounds per row, median round by "
                   f"server CPU per operation; a pair is one op. Machine: {r['machine']['nproc']} cores shared by "
                   f"server and client. Reference: {r['reference_note']}.\n")
        out.append(L.md_table(hdr, rows))
    fills = r.get("fill", [])
    if fills:
        rows = []
        for s in fills:
            rows.append([
                f"{s['from_identities']:,} → {s['to_identities']:,}", f"{s['ops_per_s']:,.0f}",
                cpu_cell(s, pg), f"{s['server_cores_busy']:.2f}",
                f"{s['client_cpu_us']:.0f} / {s['client_cores_busy']:.2f}",
                f"{s['latency_median_ms']:.2f} / {s['latency_p99_ms']:.2f}",
                L.mb(s["rss_kb_end"]), "–" if s["data_bytes"] is None else f"{s['data_bytes'] / 1e6:,.0f}",
                f"{s['other_processes_cpu_pct']}",
            ])
        out.append(f"\nFill: GetId of new guests from {r['fill_connections']} connections "
                   f"({r.get('fill_wall_s', 0):,.0f} s of filling):\n")
        out.append(L.md_table(["identities in pool", "GetId/s", "server CPU µs/call (schedstat)"
                               + (" + postgres" if pg else ""), "server cores busy",
                               "client CPU µs/call / cores", "latency median / p99 ms", "server RSS MB",
                               "data dir MB", "other procs CPU %"], rows))
    if r.get("stopped_early"):
        out.append(f"\nStopped early: {r['stopped_early']}.")
    probes = r.get("probes", [])
    if probes:
        rows = []
        for p in probes:
            def cell(e):
                return f"{cpu_cell(e, pg)} / {e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}"
            c = p["guest_pair_concurrent"]
            rows.append([f"{p['identities']:,}", cell(p["guest_pair"]), cell(p["old_creds"]), cell(p["auth_pair"]),
                         f"{c['ops_per_s']:,.0f} ({total_cpu(c, pg):,.0f} µs)",
                         L.mb(p["rss_kb_end"]),
                         "–" if p["data_bytes"] is None else f"{p['data_bytes'] / 1e6:,.0f}",
                         f"{max(p[k]['other_processes_cpu_pct'] for k in ('guest_pair', 'old_creds', 'auth_pair'))}"]
                        + ([pg_cell(p.get("pg_tables"))] if pg else []))
        what = "server CPU µs per op (schedstat) + postgres CPU" if pg else "server CPU µs per op (schedstat)"
        out.append(f"\nFlatness: at each pool size, one connection, {r['probe_rounds']} rounds × {r['probe']} "
                   f"(median round); cells are {what} / latency median / p99 ms. "
                   f"\"older identities\": GetCredentialsForIdentity of identities picked at random among all "
                   f"filled so far (at the first size, 100 new ones per connection):\n")
        out.append(L.md_table(["identities in pool", "guest pair", "GetCredentialsForIdentity, older identities",
                               "signed-in pair", f"guest pairs/s, {r['connections']} conns (CPU/pair)",
                               "server RSS MB", "data dir MB", "other procs CPU % (max)"]
                              + (["PostgreSQL identities MB / count shards heap kB, dead rows"] if pg else []), rows))
    if "fsyncs_per_op" in r:
        f = r["fsyncs_per_op"]
        out.append("\nServer fsync/fdatasync calls per operation (strace, one connection, 200 each): "
                   + ", ".join(f"{k} {v:g}" for k, v in f.items()) + ".")
    if "final_identities" in r:
        out.append(f"\nIdentities at the end: {r['final_identities']:,} (client's count), "
                   f"{r.get('identities_counted_in_store')} counted in the store. Server RSS at start "
                   f"{L.mb(r['rss_kb_at_start'])} MB, at the end {L.mb(r['rss_kb_at_end'])} MB "
                   f"(VmHWM {L.mb(r['vm_hwm_kb_at_end'])} MB).")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
