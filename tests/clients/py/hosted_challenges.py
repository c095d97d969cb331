"""The hosted pages' challenges: a new password for a user created with a temporary one, and
a TOTP code for a user who set up an authenticator (through the API, with the access token
the hosted sign-in gave them), each with a wrong answer first.

Parameters (JSON): endpoint, pool, client (public, PKCE), callback, carol {username,
temporary, password} (FORCE_CHANGE_PASSWORD), dave {username, password}, reset (carol's
password after she forgets hers), erin {username, password}.

Result: newPassword {title, weak {status, error}, done {status, to}}, totp {title, wrong
{status, error}, done {status, to}}, select {title, choices, next, done} (erin, with TOTP and
email codes, chooses email), exchanged (statuses of the code exchanges), forgot and
reset {title, status} (the pages after each step), afterReset {status, to}.
"""

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
import urllib.request

from clientlib import idp_client, run, step, totp
from hosted_code_flow import Browser, Form, location_query, token_endpoint


def authorize_params(params, verifier):
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return {
        "response_type": "code",
        "client_id": params["client"],
        "redirect_uri": params["callback"],
        "scope": "openid aws.cognito.signin.user.admin",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def sign_in(browser, params, verifier, username, password):
    """The sign-in form filled in: the answer (status, headers, page) and the form."""
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode(authorize_params(params, verifier)))
    _, _, page = browser.send(headers["Location"])
    form = Form()
    form.feed(page)
    return browser.send("/login", {**form.fields, "username": username, "password": password})


def answer(browser, page, value):
    form = Form()
    form.feed(page)
    status, headers, page = browser.send("/challenge", {**form.fields, "answer": value})
    parsed = Form()
    parsed.feed(page)
    return status, headers, page, parsed.error


def title(page):
    return page.split("<title>")[1].split("</title>")[0]


def exchange(params, headers, verifier):
    _, query = location_query(headers)
    form = {
        "grant_type": "authorization_code",
        "client_id": params["client"],
        "code": query["code"],
        "redirect_uri": params["callback"],
        "code_verifier": verifier,
    }
    return token_endpoint(params["endpoint"], form)


def hosted_totp(params, out, user, **preferences):
    """`user` signs in on the hosted pages, then sets up an authenticator with the access token
    they got and sets `preferences` (SetUserMFAPreference); returns the authenticator's key and
    when its first code was used."""
    verifier, browser = secrets.token_urlsafe(48), Browser(params["endpoint"])
    _, headers, _ = sign_in(browser, params, verifier, user["username"], user["password"])
    status, tokens = exchange(params, headers, verifier)
    out["exchanged"].append(status)
    idp = idp_client(params["endpoint"])
    secret = idp.associate_software_token(AccessToken=tokens["access_token"])["SecretCode"]
    now = time.time()
    idp.verify_software_token(AccessToken=tokens["access_token"], UserCode=totp(secret, now))
    idp.set_user_mfa_preference(AccessToken=tokens["access_token"], **preferences)
    return secret, now


def main(params):
    out = {"exchanged": []}
    endpoint, callback = params["endpoint"], params["callback"]

    step("a temporary password: the new-password page")
    carol, verifier = params["carol"], secrets.token_urlsafe(48)
    browser = Browser(endpoint)
    status, _, page = sign_in(browser, params, verifier, carol["username"], carol["temporary"])
    out["newPassword"] = {"title": title(page), "status": status}
    status, _, page, error = answer(browser, page, "short")
    out["newPassword"]["weak"] = {"status": status, "error": error}
    status, headers, _, _ = answer(browser, page, carol["password"])
    out["newPassword"]["done"] = {"status": status, "to": headers.get("Location", "").split("?")[0]}
    out["exchanged"].append(exchange(params, headers, verifier)[0])

    step("dave sets up TOTP with the access token of a hosted sign-in")
    dave = params["dave"]
    secret, now = hosted_totp(params, out, dave, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})

    step("dave signs in again: the TOTP page")
    verifier = secrets.token_urlsafe(48)
    browser = Browser(endpoint)
    status, _, page = sign_in(browser, params, verifier, dave["username"], dave["password"])
    out["totp"] = {"title": title(page), "status": status}
    wrong = f"{(int(totp(secret, now + 30)) + 1) % 1000000:06d}"
    status, _, page, error = answer(browser, page, wrong)
    out["totp"]["wrong"] = {"status": status, "error": error}
    status, headers, _, _ = answer(browser, page, totp(secret, now + 30))
    out["totp"]["done"] = {"status": status, "to": headers.get("Location", "").split("?")[0]}
    out["exchanged"].append(exchange(params, headers, verifier)[0])

    step("erin turns on both TOTP and email codes: the hosted page asks her to choose")
    erin = params["erin"]
    hosted_totp(params, out, erin, SoftwareTokenMfaSettings={"Enabled": True}, EmailMfaSettings={"Enabled": True})
    verifier, browser = secrets.token_urlsafe(48), Browser(endpoint)
    status, _, page = sign_in(browser, params, verifier, erin["username"], erin["password"])
    choices = [part.split('"')[0] for part in page.split('type="radio" name="answer" value="')[1:]]
    out["select"] = {"title": title(page), "choices": choices}
    status, _, page, _ = answer(browser, page, "EMAIL_OTP")
    out["select"]["next"] = title(page)
    with urllib.request.urlopen(f"{endpoint}/_cognate/outbox?pool={params['pool']}&user={erin['username']}") as got:
        code = json.load(got)["messages"][-1]["code"]
    status, headers, _, _ = answer(browser, page, code)
    out["select"]["done"] = {"status": status, "to": headers.get("Location", "").split("?")[0]}
    out["exchanged"].append(exchange(params, headers, verifier)[0])

    step("carol forgets her password: the code from the outbox, a new password, signed in")
    verifier, browser = secrets.token_urlsafe(48), Browser(endpoint)
    query = urllib.parse.urlencode(authorize_params(params, verifier))
    _, _, page = browser.send("/forgotPassword?" + query)
    form = Form()
    form.feed(page)
    status, _, page = browser.send("/forgotPassword", {**form.fields, "username": carol["username"]})
    out["forgot"] = {"title": title(page), "status": status}
    with urllib.request.urlopen(f"{endpoint}/_cognate/outbox?pool={params['pool']}&user={carol['username']}") as got:
        code = json.load(got)["messages"][-1]["code"]
    form = Form()
    form.feed(page)
    status, _, page = browser.send("/confirmForgotPassword", {**form.fields, "code": code, "password": params["reset"]})
    out["reset"] = {"title": title(page), "status": status}
    status, headers, _ = sign_in(browser, params, verifier, carol["username"], params["reset"])
    out["afterReset"] = {"status": status, "to": headers.get("Location", "").split("?")[0]}
    return out


if __name__ == "__main__":
    run(main)
