"""A hosted sign-in that moves between two nodes of one deployment (one PostgreSQL, one
master key): authorize on A, the sign-in form from B and posted to A, the code exchanged on
B, userInfo on A, and a second authorization on B signed in by the session cookie A set.

Parameters (JSON): a, b (the nodes' URLs), client (public, PKCE), callback, username,
password.

Result: signedIn {status, to}, exchange (status), userInfo (username), again {status, to}.
"""

import base64
import hashlib
import json
import secrets
import urllib.parse
import urllib.request

from clientlib import run, step
from hosted_code_flow import Browser, Form, location_query, token_endpoint


def main(params):
    a, b, callback = params["a"], params["b"], params["callback"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = urllib.parse.urlencode({
        "response_type": "code",
        "client_id": params["client"],
        "redirect_uri": callback,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    out = {}
    # Cookies belong to the host, not the port: both nodes see the browser's cookies.
    browser = Browser(a)
    step("authorize on A, the form from B, posted to A")
    _, headers, _ = browser.send(f"{a}/oauth2/authorize?{authorize}")
    _, _, page = browser.send(b + headers["Location"])
    form = Form()
    form.feed(page)
    status, headers, _ = browser.send(
        f"{a}/login", {**form.fields, "username": params["username"], "password": params["password"]}
    )
    location, query = location_query(headers)
    out["signedIn"] = {"status": status, "to": location.split("?")[0]}

    step("the code exchanged on B, userInfo on A")
    exchange = {
        "grant_type": "authorization_code",
        "client_id": params["client"],
        "code": query["code"],
        "redirect_uri": callback,
        "code_verifier": verifier,
    }
    status, tokens = token_endpoint(b, exchange)
    out["exchange"] = status
    request = urllib.request.Request(f"{a}/oauth2/userInfo")
    request.add_header("Authorization", "Bearer " + tokens["access_token"])
    with urllib.request.urlopen(request) as answer:
        out["userInfo"] = json.load(answer)["username"]
    out["spentOnA"] = token_endpoint(a, exchange)

    step("a second authorization on B, signed in by A's session cookie")
    status, headers, _ = browser.send(f"{b}/oauth2/authorize?{authorize}")
    out["again"] = {"status": status, "to": headers.get("Location", "").split("?")[0]}
    return out


if __name__ == "__main__":
    run(main)
