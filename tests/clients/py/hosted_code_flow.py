"""The hosted sign-in page and the authorization code flow with PKCE, driven the way a
browser without JavaScript does (urllib with a cookie jar, the form read from the HTML).

Parameters (JSON): endpoint, poolId, publicClient, confidentialClient {id, secret},
callback, username, password, email.

Result, keyed by step: the answers (status, where a redirect points, the query it carries,
OAuth errors) and the tokens' claims.
"""

import base64
import hashlib
import html.parser
import http.cookiejar
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request

from clientlib import claims, idp_client, run, step


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Form(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields, self.action, self.error = {}, None, None
        self._in_error = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        if tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value", "")
        if tag == "p" and "error" in (attrs.get("class") or "").split():
            self._in_error = True

    def handle_data(self, data):
        if self._in_error:
            self.error = (self.error or "") + data

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_error = False


class Browser:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def send(self, path, data=None):
        url = path if path.startswith("http") else self.endpoint + path
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body)
        try:
            with self.opener.open(request) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read().decode()


def location_query(headers):
    location = headers.get("Location", "")
    parsed = urllib.parse.urlparse(location)
    return location, {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}


def token_endpoint(endpoint, form):
    request = urllib.request.Request(endpoint + "/oauth2/token", data=urllib.parse.urlencode(form).encode())
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def main(params):
    endpoint, callback, client = params["endpoint"], params["callback"], params["publicClient"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = {
        "response_type": "code",
        "client_id": client,
        "redirect_uri": callback,
        "scope": "openid email aws.cognito.signin.user.admin",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    out = {}
    browser = Browser(endpoint)

    step("authorize without a session: to the sign-in page")
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode(authorize))
    out["authorize"] = {"status": status, "location": headers.get("Location", "").split("?")[0]}
    status, headers, page = browser.send(headers["Location"])
    form = Form()
    form.feed(page)
    out["loginPage"] = {"status": status, "action": form.action, "hidden": sorted(form.fields)}

    step("wrong password, unknown user, missing CSRF token")
    answers = {}
    for name, username, password in [
        ("wrongPassword", params["username"], "Wrong-password-1"),
        ("unknownUser", "nobody-" + secrets.token_hex(4), "Wrong-password-1"),
    ]:
        status, _, page = browser.send("/login", {**form.fields, "username": username, "password": password})
        parsed = Form()
        parsed.feed(page)
        answers[name] = {"status": status, "error": parsed.error}
    no_csrf = {k: v for k, v in form.fields.items() if k != "_csrf"}
    status, _, _ = browser.send("/login", {**no_csrf, "username": params["username"], "password": params["password"]})
    answers["noCsrf"] = status
    out["refusals"] = answers

    step("sign in")
    status, headers, _ = browser.send(
        "/login", {**form.fields, "username": params["username"], "password": params["password"]}
    )
    location, query = location_query(headers)
    out["signedIn"] = {"status": status, "to": location.split("?")[0], "state": query.get("state"), "code": "code" in query}
    code = query["code"]

    step("token exchange")
    exchange = {"grant_type": "authorization_code", "client_id": client, "code": code, "redirect_uri": callback}
    wrong_verifier = token_endpoint(endpoint, {**exchange, "code_verifier": "x" * 43})
    status, tokens = token_endpoint(endpoint, {**exchange, "code_verifier": verifier})
    out["exchange"] = {"status": status, "keys": sorted(tokens)}
    out["idClaims"] = claims(tokens["id_token"])
    out["accessClaims"] = claims(tokens["access_token"])
    out["spentCode"] = token_endpoint(endpoint, {**exchange, "code_verifier": verifier})
    out["wrongVerifier"] = wrong_verifier

    step("userInfo and GetUser with the access token")
    request = urllib.request.Request(endpoint + "/oauth2/userInfo")
    request.add_header("Authorization", "Bearer " + tokens["access_token"])
    with urllib.request.urlopen(request) as answer:
        out["userInfo"] = json.load(answer)
    user = idp_client(endpoint).get_user(AccessToken=tokens["access_token"])
    out["getUser"] = user["Username"]

    step("a second authorize: the session signs in without the form")
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "state": "st-2"}))
    location, query = location_query(headers)
    out["again"] = {"status": status, "to": location.split("?")[0], "state": query.get("state"), "code": "code" in query}
    unspent = query["code"]

    step("prompt and login_hint")
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "prompt": "login"}))
    out["promptLogin"] = location_query(headers)[0].split("?")[0]
    status, headers, _ = Browser(endpoint).send(
        "/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "prompt": "none"})
    )
    out["promptNone"] = location_query(headers)[1].get("error")
    hinted = Browser(endpoint)
    _, headers, _ = hinted.send("/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "login_hint": "alice"}))
    _, _, page = hinted.send(headers["Location"])
    out["loginHint"] = 'name="username" type="text" autocomplete="username" value="alice"' in page

    step("refresh, revoke, logout")
    refresh = {"grant_type": "refresh_token", "client_id": client, "refresh_token": tokens["refresh_token"]}
    status, refreshed = token_endpoint(endpoint, refresh)
    out["refreshed"] = {"status": status, "keys": sorted(refreshed), "scope": claims(refreshed["access_token"])["scope"]}
    revoke = urllib.request.Request(
        endpoint + "/oauth2/revoke",
        data=urllib.parse.urlencode({"token": tokens["refresh_token"], "client_id": client}).encode(),
    )
    with urllib.request.urlopen(revoke) as answer:
        out["revoked"] = {"status": answer.status, "body": answer.read().decode()}
    out["refreshAfterRevoke"] = token_endpoint(endpoint, refresh)
    status, headers, _ = browser.send(
        "/logout?" + urllib.parse.urlencode({"client_id": client, "logout_uri": "https://evil.example/"})
    )
    out["logoutElsewhere"] = {"status": status, "location": headers.get("Location")}
    status, headers, _ = browser.send("/logout?" + urllib.parse.urlencode({"client_id": client, "logout_uri": params["logout"]}))
    out["logout"] = {"status": status, "location": headers.get("Location")}
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "state": "st-3"}))
    out["afterLogout"] = {"status": status, "location": headers.get("Location", "").split("?")[0]}

    step("the implicit flow")
    implicit = {
        "response_type": "token",
        "client_id": params["implicitClient"],
        "redirect_uri": callback,
        "scope": "openid email",
        "state": "st-i",
        "nonce": "n-i",
    }
    browser = Browser(endpoint)
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode(implicit))
    status, headers, page = browser.send(headers["Location"])
    form = Form()
    form.feed(page)
    status, headers, _ = browser.send(
        "/login", {**form.fields, "username": params["username"], "password": params["password"]}
    )
    location = headers.get("Location", "")
    fragment = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(location).fragment).items()}
    out["implicit"] = {
        "status": status,
        "query": urllib.parse.urlparse(location).query,
        "keys": sorted(fragment),
        "state": fragment.get("state"),
        "nonce": claims(fragment["id_token"]).get("nonce") if "id_token" in fragment else None,
    }
    status, headers, _ = Browser(endpoint).send(
        "/oauth2/authorize?" + urllib.parse.urlencode({**implicit, "client_id": client})
    )
    out["implicitNotAllowed"] = location_query(headers)[1].get("error")

    step("the pool's domain")
    port = urllib.parse.urlparse(endpoint).port
    domains = {}
    for name, host in [
        ("own", f"{params['domain']}.auth.localhost:{port}"),
        ("unknown", f"nobody-has-this.auth.localhost:{port}"),
        ("otherPool", f"{params['otherDomain']}.auth.localhost:{port}"),
    ]:
        request = urllib.request.Request(endpoint + "/oauth2/authorize?" + urllib.parse.urlencode(authorize))
        request.add_header("Host", host)
        try:
            with urllib.request.build_opener(NoRedirect).open(request) as answer:
                domains[name] = {"status": answer.status, "location": None}
        except urllib.error.HTTPError as err:
            domains[name] = {"status": err.code, "location": (err.headers.get("Location") or "").split("?")[0] or None}
    out["domains"] = domains

    step("what is refused")
    fresh = Browser(endpoint)
    status, headers, page = fresh.send(
        "/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "redirect_uri": callback + "/evil"})
    )
    out["prefixRedirect"] = {"status": status, "location": headers.get("Location")}
    status, headers, _ = fresh.send(
        "/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "code_challenge_method": "plain"})
    )
    out["plainPkce"] = {"status": status, "query": location_query(headers)[1]}
    no_pkce = {k: v for k, v in authorize.items() if not k.startswith("code_challenge")}
    status, headers, _ = fresh.send("/oauth2/authorize?" + urllib.parse.urlencode(no_pkce))
    out["publicWithoutPkce"] = location_query(headers)[1]
    status, headers, _ = fresh.send("/oauth2/authorize?" + urllib.parse.urlencode({**authorize, "scope": "openid phone"}))
    out["scopeNotAllowed"] = location_query(headers)[1]
    other = params["confidentialClient"]
    status, tokens_for_other = token_endpoint(
        endpoint,
        {**exchange, "code": unspent, "client_id": other["id"], "client_secret": other["secret"], "code_verifier": verifier},
    )
    out["codeOfAnotherClient"] = {"status": status, "body": tokens_for_other}
    return out


if __name__ == "__main__":
    run(main)
