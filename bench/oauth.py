#!/usr/bin/env python3
"""Cognate benchmark, OAuth 2.0: the authorization-code flow of the hosted sign-in page, and
client_credentials tokens.

On a fresh server (SQLite, or PostgreSQL with --backend postgres), set up with the AWS API
(SigV4-signed, test/test): one pool; --users confirmed users (AdminCreateUser, then
AdminSetUserPassword Permanent); a public client (no secret) with AllowedOAuthFlowsUserPoolClient,
AllowedOAuthFlows [code], AllowedOAuthScopes [openid], CallbackURLs [http://localhost:3000/callback]
(and ALLOW_USER_PASSWORD_AUTH, to compare with the API's sign-in); a resource server "orders"
with the scope "read"; a client with a secret, AllowedOAuthFlows [client_credentials],
AllowedOAuthScopes [orders/read].

What a browser and a relying party send for one sign-in, "the flow", each answer checked:
1. GET /oauth2/authorize?response_type=code&client_id&redirect_uri&scope=openid&state&nonce&
   code_challenge&code_challenge_method=S256, no cookie: 302 to /login?...;
2. GET /login?... (that Location): 200, the form; its hidden fields and the cognate_csrf cookie read;
3. POST /login, the hidden fields + _csrf + username + password, with the cookie: 302 to the
   callback with ?code= and the state;
4. POST /oauth2/token grant_type=authorization_code, client_id, code, redirect_uri, code_verifier
   (PKCE S256, a new verifier per flow): 200 with id_token, access_token and refresh_token.
Every flow is a new browser (no session cookie: otherwise step 1 would skip the form).

Measured, each in its own timed loop (--rounds rounds, the median round by server CPU):
- the whole flow, on one connection and from --connections connections (one user each);
- each step alone on one connection: authorize; GET /login (with the cookie: the same token);
  POST /login (a new code each time, from the same form); POST /oauth2/token (codes made by
  POST /login before the clock starts);
- POST /login with an unknown username, a new one each time (the hosted page computes a
  verifier for it all the same, then shows the error: the password check without the tokens);
- InitiateAuth USER_PASSWORD_AUTH of the same users (the API's sign-in: the same password check
  and two tokens signed);
- client_credentials: POST /oauth2/token with Authorization: Basic, on 1 and --connections
  connections.
Then a check of the lockout: --lockout-connections connections sign the same user in through
POST /login at once, with the right password; every answer that is not the code is counted.

Server CPU is utime+stime of the server (per-thread schedstat as a cross-check), plus, on
PostgreSQL, the backends serving it (bench/loadgen.py). Requests go over bench/identity.py's
raw-socket keep-alive client. Run through bench/run.sh oauth.
"""

import argparse
import base64
import hashlib
import html.parser
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse

import bench as B
import identity as I
import loadgen as L

PASSWORD = "Bench-Passw0rd!"
TEMP_PASSWORD = "Temp-Passw0rd!"
CALLBACK = "http://localhost:3000/callback"
FORM = "application/x-www-form-urlencoded"
log = B.log

# stack.md has no OAuth row: the references are composed from its "Physical limits per core"
# and JWT rows (server CPU). POST /login checks the password and signs in as USER_PASSWORD_AUTH
# does (~1.3 ms); the code exchange signs an ID and an access token as a refresh does
# (~0.57 ms); authorize and GET /login read the client, as a read-only admin call (~0.05 ms).
# client_credentials: one RS256 signature (~253 µs, aws-lc-rs) + a read-only call (~50 µs).
REFERENCE = {
    "authorize": 50.0, "login_page": 50.0, "login_post": 1300.0, "token": 570.0,
    "login_unknown": 1300.0, "password_auth": 1300.0, "cc": 303.0,
}
REFERENCE["flow"] = sum(REFERENCE[k] for k in ("authorize", "login_page", "login_post", "token"))
REFERENCE_NOTE = (
    "composed from stack.md: POST /login ≈ USER_PASSWORD_AUTH checked against the SRP verifier (~1.3 ms); the "
    "code exchange ≈ a token refresh (~0.57 ms: two tokens signed); authorize and GET /login ≈ a read-only call "
    "(~0.05 ms each); the flow = their sum (~1.97 ms); client_credentials = one RS256 signature (~253 µs) + a "
    "read-only call (~50 µs) ≈ 0.30 ms")
LABEL = {
    "flow": "the flow: authorize + GET /login + POST /login + token",
    "authorize": "GET /oauth2/authorize (no session: 302 to /login)",
    "login_page": "GET /login (the form)",
    "login_post": "POST /login (password right: 302 with the code)",
    "token": "POST /oauth2/token, authorization_code + PKCE",
    "login_unknown": "POST /login, unknown user, client hiding user existence (verifier computed, error page)",
    "password_auth": "InitiateAuth USER_PASSWORD_AUTH (API, for comparison)",
    "cc": "POST /oauth2/token, client_credentials (Basic)",
}
STEPS = ["authorize", "login_page", "login_post", "token"]


# --- HTTP ------------------------------------------------------------------------------------

def get(conn, target, cookie=None):
    lines = [f"GET {target} HTTP/1.1", f"Host: {conn.host}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post_form(conn, path, fields, cookie=None, authorization=None):
    body = urllib.parse.urlencode(fields).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {conn.host}", f"Content-Type: {FORM}", f"Content-Length: {len(body)}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def headers_of(head):
    """[(lower-case name, value)] of a response head (bytes)."""
    out = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        out.append((name.strip().lower(), value.strip()))
    return out


def header(head, name):
    for n, v in headers_of(head):
        if n == name:
            return v
    return None


def cookie_of(head, name):
    """The value a Set-Cookie of the response gives cookie `name`."""
    for n, v in headers_of(head):
        if n == "set-cookie":
            pair = v.split(";", 1)[0]
            k, _, val = pair.partition("=")
            if k.strip() == name:
                return val.strip()
    return None


def expect(conn, req, status, what):
    got, head, body = conn.exchange(req)
    if got != status:
        raise RuntimeError(f"{what}: HTTP {got}, expected {status}: {body[:300]!r}")
    if conn.closing:
        raise RuntimeError(f"{what}: the server closed the keep-alive connection")
    return head, body


class HiddenFields(html.parser.HTMLParser):
    """The hidden inputs of the page's form, as a browser would post them."""

    def __init__(self):
        super().__init__()
        self.fields = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and "name" in a:
            self.fields.append((a["name"], a.get("value") or ""))


def hidden_fields(body):
    p = HiddenFields()
    p.feed(body.decode())
    return p.fields


# --- the flow's steps ------------------------------------------------------------------------

def pkce():
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_target(client_id, challenge, state, nonce):
    return "/oauth2/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": "openid",
        "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})


def step_authorize(conn, target):
    head, _ = expect(conn, get(conn, target), 302, "authorize")
    location = header(head, "location") or ""
    if not location.startswith("/login?"):
        raise RuntimeError(f"authorize: redirected to {location[:200]!r}, not /login")
    return location


def step_login_page(conn, location, csrf=None):
    """The form: (its hidden fields, the CSRF cookie's value)."""
    head, body = expect(conn, get(conn, location, f"cognate_csrf={csrf}" if csrf else None), 200, "GET /login")
    fields = hidden_fields(body)
    csrf = cookie_of(head, "cognate_csrf") or csrf
    if not csrf or ("_csrf", csrf) not in fields:
        raise RuntimeError(f"GET /login: no CSRF token in the form and cookie: {body[:300]!r}")
    return fields, csrf


def login_post_req(conn, fields, csrf, username, password=PASSWORD):
    return post_form(conn, "/login", fields + [("username", username), ("password", password)],
                     cookie=f"cognate_csrf={csrf}")


def code_of(head, state):
    location = header(head, "location") or ""
    if not location.startswith(CALLBACK + "?"):
        raise RuntimeError(f"POST /login: redirected to {location[:200]!r}, not the callback")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if q.get("state") != [state] or "code" not in q:
        raise RuntimeError(f"POST /login: no code or a wrong state in {location[:200]!r}")
    return q["code"][0]


def step_login_post(conn, req, state):
    got, head, body = conn.exchange(req)
    if got != 302:
        raise RuntimeError(f"POST /login: HTTP {got}: {body[:400]!r}")
    return code_of(head, state)


def token_req(conn, client_id, code, verifier):
    return post_form(conn, "/oauth2/token", [
        ("grant_type", "authorization_code"), ("client_id", client_id), ("code", code),
        ("redirect_uri", CALLBACK), ("code_verifier", verifier)])


def check_tokens(body):
    if b'"id_token"' not in body or b'"access_token"' not in body or b'"refresh_token"' not in body:
        raise RuntimeError(f"token: not three tokens: {body[:300]!r}")


def flow(conn, client_id, username):
    """One whole sign-in, as a new browser and its relying party do it."""
    verifier, challenge = pkce()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    location = step_authorize(conn, authorize_target(client_id, challenge, state, nonce))
    fields, csrf = step_login_page(conn, location)
    code = step_login_post(conn, login_post_req(conn, fields, csrf, username), state)
    _, body = expect(conn, token_req(conn, client_id, code, verifier), 200, "token")
    check_tokens(body)


def basic(client_id, secret):
    raw = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def cc_req(conn, auth):
    return post_form(conn, "/oauth2/token", [("grant_type", "client_credentials"), ("scope", "orders/read")],
                     authorization=auth)


def check_cc(body):
    if b'"access_token"' not in body or b'"token_type":"Bearer"' not in body.replace(b" ", b""):
        raise RuntimeError(f"client_credentials: {body[:300]!r}")


# --- the load --------------------------------------------------------------------------------

class Task:
    """n operations of one kind per connection; share = the connection's index (its user)."""

    def __init__(self, kind, ctx, n):
        self.kind, self.ctx, self.n = kind, ctx, n

    def setup(self, client, share):
        client.close()  # the OAuth endpoints take no SigV4: identity.Conn
        conn = I.Conn(client.server.port)
        ctx, kind, n = self.ctx, self.kind, self.n
        cid, user = ctx["client_id"], ctx["users"][share % len(ctx["users"])]
        state = {"conn": conn, "user": user}
        verifier, challenge = pkce()
        st, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        if kind == "login_unknown":
            cid = ctx["hidden_client_id"]
        target = authorize_target(cid, challenge, st, nonce)
        if kind == "flow":
            flow(conn, cid, user)  # one before the clock: the same path warmed
        elif kind == "authorize":
            state["target"] = target
        elif kind in ("login_page", "login_post", "token", "login_unknown"):
            location = step_authorize(conn, target)
            fields, csrf = step_login_page(conn, location)
            state.update(location=location, csrf=csrf, state=st)
            if kind == "login_post":
                state["req"] = login_post_req(conn, fields, csrf, user)
            elif kind == "login_unknown":
                tag = secrets.token_hex(4)
                state["reqs"] = [login_post_req(conn, fields, csrf, f"nobody-{tag}-{j}") for j in range(n)]
            elif kind == "token":
                req = login_post_req(conn, fields, csrf, user)
                # Codes live 5 minutes: these are used within seconds.
                state["reqs"] = [token_req(conn, cid, step_login_post(conn, req, st), verifier) for _ in range(n)]
        elif kind == "password_auth":
            state["req"] = password_auth_req(conn, cid, user)
            check_api_tokens(conn.roundtrip(state["req"]))
        elif kind == "cc":
            state["req"] = cc_req(conn, basic(ctx["m2m_id"], ctx["m2m_secret"]))
            check_cc(conn.roundtrip(state["req"]))
        else:
            raise ValueError(kind)
        return state

    def run(self, client, share, lat, state):
        conn, kind, n = state["conn"], self.kind, self.n
        pc = time.perf_counter
        if kind == "flow":
            cid, user = self.ctx["client_id"], state["user"]
            for _ in range(n):
                t = pc()
                flow(conn, cid, user)
                lat.append(pc() - t)
        elif kind == "authorize":
            req = get(conn, state["target"])
            for _ in range(n):
                t = pc()
                head, _ = expect(conn, req, 302, "authorize")
                lat.append(pc() - t)
                if b"/login?" not in head:
                    raise RuntimeError(f"authorize: {head[:300]!r}")
        elif kind == "login_page":
            req = get(conn, state["location"], f"cognate_csrf={state['csrf']}")
            needle = f'name="_csrf" value="{state["csrf"]}"'.encode()
            for _ in range(n):
                t = pc()
                _, body = expect(conn, req, 200, "GET /login")
                lat.append(pc() - t)
                if needle not in body:
                    raise RuntimeError(f"GET /login: {body[:300]!r}")
        elif kind == "login_post":
            req, st = state["req"], state["state"]
            for _ in range(n):
                t = pc()
                step_login_post(conn, req, st)
                lat.append(pc() - t)
        elif kind == "login_unknown":
            for req in state["reqs"]:
                t = pc()
                _, body = expect(conn, req, 400, "POST /login, unknown user")
                lat.append(pc() - t)
                if b'class="error"' not in body:
                    raise RuntimeError(f"POST /login, unknown user: {body[:300]!r}")
        elif kind == "token":
            for req in state["reqs"]:
                t = pc()
                _, body = expect(conn, req, 200, "token")
                lat.append(pc() - t)
                check_tokens(body)
        elif kind == "password_auth":
            req = state["req"]
            for _ in range(n):
                t = pc()
                body = conn.roundtrip(req)
                lat.append(pc() - t)
                check_api_tokens(body)
        elif kind == "cc":
            req = state["req"]
            for _ in range(n):
                t = pc()
                body = conn.roundtrip(req)
                lat.append(pc() - t)
                check_cc(body)
        conn.close()


def check_api_tokens(body):
    if b'"AccessToken"' not in body:
        raise RuntimeError(f"USER_PASSWORD_AUTH: {body[:300]!r}")


def password_auth_req(conn, client_id, user):
    body = json.dumps({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id,
                       "AuthParameters": {"USERNAME": user, "PASSWORD": PASSWORD}}).encode()
    return (f"POST / HTTP/1.1\r\nHost: {conn.host}\r\nContent-Type: {B.CONTENT_TYPE}\r\n"
            f"X-Amz-Target: {B.TARGET_PREFIX}InitiateAuth\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class LockoutTask:
    """POST /login (or, api=True, InitiateAuth USER_PASSWORD_AUTH) of one user with the right
    password, n times per connection, all connections at once; returns {answer: count} (302 or
    200 = signed in; else the error)."""

    def __init__(self, ctx, user, n, api=False):
        self.ctx, self.user, self.n, self.api = ctx, user, n, api

    def setup(self, client, share):
        client.close()
        conn = I.Conn(client.server.port)
        if self.api:
            return conn, password_auth_req(conn, self.ctx["client_id"], self.user)
        verifier, challenge = pkce()
        st = secrets.token_urlsafe(12)
        location = step_authorize(conn, authorize_target(self.ctx["client_id"], challenge, st, "n"))
        fields, csrf = step_login_page(conn, location)
        return conn, login_post_req(conn, fields, csrf, self.user)

    def run(self, client, share, lat, state):
        conn, req = state
        out = {}
        for _ in range(self.n):
            t = time.perf_counter()
            got, _, body = conn.exchange(req)
            lat.append(time.perf_counter() - t)
            if got == 302:
                key = "302 (code)"
            elif got == 200 and self.api:
                key = "200 (tokens)"
            elif self.api:
                key = f"{got} {json.loads(body).get('message', '')}"
            else:
                i = body.find(b'class="error"')
                msg = body[i:i + 200].split(b">", 1)[-1].split(b"<", 1)[0].decode(errors="replace") if i >= 0 else ""
                key = f"{got} {msg}".strip()
            out[key] = out.get(key, 0) + 1
        conn.close()
        return out


def measure(server, kind, ctx, conns, per_conn, rounds, pg):
    per_round = []
    for _ in range(rounds):
        delta, lat, _, samples = L.run_parallel(server, Task(kind, ctx, per_conn), list(range(conns)),
                                                with_postgres=pg)
        res = L.per_op(delta, conns * per_conn, lat)
        res["rss_kb_max"] = max(s[1] for s in samples) if samples else server.rss_kb()
        per_round.append(res)
    med = dict(sorted(per_round, key=lambda r: r["server_cpu_us"])[len(per_round) // 2])
    med["connections"], med["rounds"] = conns, rounds
    for key in ("server_cpu_us", "server_cpu_us_schedstat", "postgres_cpu_us", "ops_per_s", "client_cpu_us",
                "other_processes_cpu_pct"):
        if key in per_round[0]:
            med[key + "_rounds"] = [r.get(key) for r in per_round]
    return med


# --- setup -------------------------------------------------------------------------------------

def setup(server, users):
    c = B.Client(server)
    try:
        pool = c.call("CreateUserPool", {"PoolName": "bench-oauth"})["UserPool"]["Id"]
        names = [f"user{i:03d}" for i in range(users)]
        for name in names:
            c.call("AdminCreateUser", {
                "UserPoolId": pool, "Username": name, "MessageAction": "SUPPRESS", "TemporaryPassword": TEMP_PASSWORD,
                "UserAttributes": [{"Name": "email", "Value": f"{name}@example.com"},
                                   {"Name": "email_verified", "Value": "true"}]})
            c.call("AdminSetUserPassword", {"UserPoolId": pool, "Username": name, "Password": PASSWORD,
                                            "Permanent": True})
        web = c.call("CreateUserPoolClient", {
            "UserPoolId": pool, "ClientName": "web", "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthFlows": ["code"], "AllowedOAuthScopes": ["openid"], "CallbackURLs": [CALLBACK],
            "SupportedIdentityProviders": ["COGNITO"],
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]})["UserPoolClient"]
        # The same, hiding user existence: an unknown user's password is checked against a
        # made-up verifier (the unknown-user row); with the default (LEGACY) it is refused at once.
        hidden = c.call("CreateUserPoolClient", {
            "UserPoolId": pool, "ClientName": "web-hidden", "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthFlows": ["code"], "AllowedOAuthScopes": ["openid"], "CallbackURLs": [CALLBACK],
            "SupportedIdentityProviders": ["COGNITO"], "PreventUserExistenceErrors": "ENABLED"})["UserPoolClient"]
        c.call("CreateResourceServer", {"UserPoolId": pool, "Identifier": "orders", "Name": "Orders",
                                        "Scopes": [{"ScopeName": "read", "ScopeDescription": "Read"}]})
        m2m = c.call("CreateUserPoolClient", {
            "UserPoolId": pool, "ClientName": "service", "GenerateSecret": True,
            "AllowedOAuthFlowsUserPoolClient": True, "AllowedOAuthFlows": ["client_credentials"],
            "AllowedOAuthScopes": ["orders/read"]})["UserPoolClient"]
    finally:
        c.close()
    ctx = {"pool_id": pool, "client_id": web["ClientId"], "hidden_client_id": hidden["ClientId"], "users": names,
           "m2m_id": m2m["ClientId"], "m2m_secret": m2m["ClientSecret"]}
    # The flow is right: a code is single-use, and bound to its verifier.
    conn = I.Conn(server.port)
    try:
        flow(conn, ctx["client_id"], names[0])
        verifier, challenge = pkce()
        st = secrets.token_urlsafe(12)
        location = step_authorize(conn, authorize_target(ctx["client_id"], challenge, st, "n"))
        fields, csrf = step_login_page(conn, location)
        code = step_login_post(conn, login_post_req(conn, fields, csrf, names[0]), st)
        expect(conn, token_req(conn, ctx["client_id"], code, "x" * 43), 400, "token with a wrong verifier")
        check_tokens(expect(conn, token_req(conn, ctx["client_id"], code, verifier), 200, "token")[1])
        expect(conn, token_req(conn, ctx["client_id"], code, verifier), 400, "token with a spent code")
        check_cc(conn.roundtrip(cc_req(conn, basic(ctx["m2m_id"], ctx["m2m_secret"]))))
        expect(conn, cc_req(conn, basic(ctx["m2m_id"], "wrong")), 400, "client_credentials, wrong secret")
    finally:
        conn.close()
    return ctx


# --- main --------------------------------------------------------------------------------------

def row_log(kind, res, pg):
    log(f"  {kind} ({res['connections']} conn): server {res['server_cpu_us']:.0f} µs/op "
        f"({res['server_cpu_us_schedstat']:.0f} schedstat)"
        + (f" + postgres {res.get('postgres_cpu_us', 0):.0f}" if pg else "")
        + f", {res['ops_per_s']:.0f}/s, client {res['client_cpu_us']:.0f} µs/op, latency "
        f"{res['latency_median_ms']:.2f} / {res['latency_p99_ms']:.2f} ms, rounds {res['server_cpu_us_rounds']}, "
        f"other {res['other_processes_cpu_pct_rounds']}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/test")
    ap.add_argument("--quick", action="store_true", help="fewer operations per round (100 flows, 500 tokens)")
    ap.add_argument("-n", "--flows", type=int, help="flows (and POST /login, token exchanges) per round on one "
                    "connection (default 300)")
    ap.add_argument("--light", type=int, help="authorize, GET /login and client_credentials per round and "
                    "connection (default 2000)")
    ap.add_argument("--connections", type=int, default=4, help="concurrent connections (default 4)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lockout-connections", type=int, default=8,
                    help="connections signing one user in at once for the lockout check (0: skip)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--out")
    args = ap.parse_args()
    pg = args.backend == "postgres"
    heavy = args.flows or (100 if args.quick else 300)
    light = args.light or (500 if args.quick else 2000)
    out_path = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", f"oauth-{args.backend}.json")
    binary = os.path.abspath(args.bin)
    results = L.base_results(binary, args.wait_quiet)
    results.update({"backend": args.backend, "connections": args.connections, "rounds": args.rounds,
                    "heavy_per_round": heavy, "light_per_round": light, "reference_us": REFERENCE,
                    "reference_note": REFERENCE_NOTE})
    here = os.path.dirname(os.path.abspath(__file__))
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
        schema = f"bench_{secrets.token_hex(4)}"
        extra_args = ["--database-url", args.database_url, "--database-schema", schema]
        extra_env = {"COGNATE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
        results["postgres_schema"] = schema
    server = L.Server(binary, extra_args, extra_env)
    plan = [  # kind, connections, operations per connection and round
        ("flow", 1, heavy), ("flow", args.connections, max(25, heavy // 2)),
        ("authorize", 1, light), ("login_page", 1, light), ("login_post", 1, heavy), ("token", 1, heavy),
        ("login_unknown", 1, heavy), ("password_auth", 1, heavy),
        ("cc", 1, light), ("cc", args.connections, max(100, light // 2)),
    ]
    try:
        server.wait_ready(timeout=60)
        ctx = setup(server, max(args.connections + 2, args.lockout_connections, 1))
        results["rss_kb_at_start"] = server.rss_kb()
        log(f"{args.backend}: pool {ctx['pool_id']}, {len(ctx['users'])} users; the flow checked")
        rows = []
        for kind, conns, per_conn in plan:
            B.wait_quiet(args.wait_quiet)
            log(f"{kind}: {conns} connection(s), {args.rounds} × {conns} × {per_conn} ...")
            res = measure(server, kind, ctx, conns, per_conn, args.rounds, pg)
            res["kind"] = kind
            rows.append(res)
            row_log(kind, res, pg)
            results["rows"] = rows
            L.write_json(out_path, results)
        if args.lockout_connections:
            checks = {}
            for api in (False, True):
                B.wait_quiet(args.wait_quiet)
                n, what = 50, "InitiateAuth USER_PASSWORD_AUTH" if api else "POST /login"
                # A user no other row signed in: its counter starts clean.
                user = ctx["users"][-1 if api else -2]
                log(f"lockout check: {args.lockout_connections} connections × {n} {what} of one user at once ...")
                delta, lat, extras, _ = L.run_parallel(server, LockoutTask(ctx, user, n, api),
                                                       list(range(args.lockout_connections)), with_postgres=pg)
                answers = {}
                for e in extras:
                    for k, v in e.items():
                        answers[k] = answers.get(k, 0) + v
                check = {"what": what, "connections": args.lockout_connections, "per_connection": n,
                         "answers": answers, **L.per_op(delta, args.lockout_connections * n, lat)}
                log(f"  answers: {answers}")
                # Afterwards (the longest first lock is a second), does the user still sign in?
                conn = I.Conn(server.port)
                try:
                    time.sleep(1.5)
                    flow(conn, ctx["client_id"], user)
                    check["signs_in_afterwards"] = True
                except RuntimeError as e:
                    check["signs_in_afterwards"] = str(e)[:300]
                finally:
                    conn.close()
                checks["api" if api else "hosted"] = check
            results["lockout_check"] = checks
        results["rss_kb_at_end"] = server.rss_kb()
        results["vm_hwm_kb_at_end"] = server.status_kb("VmHWM")
        with open("/proc/loadavg") as f:
            results["machine"]["loadavg_at_end"] = f.read().split()[:3]
    finally:
        server.stop()
        if schema:
            try:
                I.psql(args.database_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                results["postgres_schema_dropped"] = True
            except Exception as e:  # noqa
                log(f"could not drop schema {schema}: {e}")
    results["markdown"] = markdown(results)
    dirty = results.get("uncommitted_server_sources")
    print(f"Cognate OAuth 2.0 benchmark ({args.backend}), {L.machine_header(results)}, commit "
          f"{results.get('commit', '?')}" + (f" with uncommitted changes to {len(dirty)} server file(s)" if dirty else "")
          + "\n")
    print(results["markdown"], flush=True)
    L.write_json(out_path, results)


def markdown(r):
    pg = r["backend"] == "postgres"
    ref = r["reference_us"]
    rows = []
    for e in r["rows"]:
        kind = e["kind"]
        cpu = e["server_cpu_us"] + (e.get("postgres_cpu_us", 0) if pg else 0)
        rows.append([
            LABEL[kind], f"{e['connections']}",
            f"{e['server_cpu_us']:,.0f} ({e['server_cpu_us_schedstat']:,.0f})"
            + (f" + {e.get('postgres_cpu_us', 0):,.0f}" if pg else ""),
            f"{min(e['server_cpu_us_rounds']):,.0f}–{max(e['server_cpu_us_rounds']):,.0f}",
            f"{e['ops_per_s']:,.0f}", f"{1e6 / cpu:,.0f}" if cpu else "–",
            f"{e['server_cores_busy']:.2f} / {e['client_cores_busy']:.2f}", f"{e['client_cpu_us']:,.0f}",
            f"{e['latency_median_ms']:.2f} / {e['latency_p99_ms']:.2f}",
            f"{cpu / ref[kind]:.2f}× ~{ref[kind]:g} µs", f"{max(e['other_processes_cpu_pct_rounds'])}",
        ])
    hdr = ["operation", "conns", "server CPU µs/op (schedstat)" + (" + postgres" if pg else ""),
           "rounds range µs", "ops/s", "ops/s per core (1/CPU)", "server / client cores busy", "client CPU µs/op",
           "latency median / p99 ms",
           "ratio to stack.md composite" + (" (SQLite-based; server + postgres)" if pg else ""),
           "other procs CPU % (max round)"]
    out = [f"{r['backend']}; {r['rounds']} rounds per row, median round by server CPU per operation. Reference: "
           f"{r['reference_note']}.\n", L.md_table(hdr, rows)]
    seq = {e["kind"]: e["server_cpu_us"] for e in r["rows"] if e["connections"] == 1}
    if all(k in seq for k in STEPS + ["flow"]):
        parts = " + ".join(f"{seq[k]:,.0f}" for k in STEPS)
        out.append(f"\nSteps alone (one connection): {parts} = {sum(seq[k] for k in STEPS):,.0f} µs, against "
                   f"{seq['flow']:,.0f} µs for the whole flow.")
    for lc in (r.get("lockout_check") or {}).values():
        out.append(f"\nLockout check: {lc['connections']} connections × {lc['per_connection']} {lc['what']} of one "
                   f"user with the right password, at once: {lc['answers']}; the user signs in afterwards: "
                   f"{lc.get('signs_in_afterwards')}.")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
