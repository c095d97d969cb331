"""Signing in through an OpenID Connect identity provider on the hosted pages: the provider
is another Cognate user pool (its hosted pages, its discovery, its tokens), named in the
app's pool by CreateIdentityProvider; the browser goes app -> provider's sign-in page ->
/oauth2/idpresponse -> the app's callback, and the app's tokens name the federated user.

Parameters (JSON): endpoint, app {client, callback} (public, PKCE, SupportedIdentityProviders
with the provider), provider (its name), username, password (the provider's user).

Result: hops (where each redirect went, without queries), exchange (status), claims (of
the app's ID token: cognito:username, email, identities), again (the second federated
sign-in's username: the same user), loginButton (the sign-in page links the provider).
"""

import base64
import hashlib
import json
import secrets
import urllib.parse

from clientlib import idp_client, refused, run, step
from hosted_code_flow import Browser, Form, claims, location_query, token_endpoint


def path_of(location):
    parsed = urllib.parse.urlparse(location)
    return parsed.path


def federated_sign_in(browser, params, verifier, hops, username=None, password=None):
    app = params["app"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = {
        "response_type": "code",
        "client_id": app["client"],
        "redirect_uri": app["callback"],
        "scope": "openid email",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "identity_provider": params["provider"],
    }
    status, headers, _ = browser.send("/oauth2/authorize?" + urllib.parse.urlencode(authorize))
    location = headers["Location"]
    hops.append(path_of(location))
    status, headers, page = browser.send(location)
    if status == 302:
        # The provider's sign-in page (or, signed in there already, straight back).
        location = headers["Location"]
        hops.append(path_of(location))
        if path_of(location) == "/login":
            _, _, page = browser.send(location)
            form = Form()
            form.feed(page)
            status, headers, _ = browser.send(
                "/login",
                {**form.fields, "username": username or params["username"], "password": password or params["password"]},
            )
            location = headers["Location"]
            hops.append(path_of(location))
        status, headers, page = browser.send(location)
    location = headers.get("Location", "")
    hops.append(location.split("?")[0])
    return location


def main(params):
    endpoint, app = params["endpoint"], params["app"]
    out = {"hops": []}
    browser = Browser(endpoint)

    step("sign in through the provider")
    verifier = secrets.token_urlsafe(48)
    location = federated_sign_in(browser, params, verifier, out["hops"])
    _, query = location_query({"Location": location})
    exchange = {
        "grant_type": "authorization_code",
        "client_id": app["client"],
        "code": query["code"],
        "redirect_uri": app["callback"],
        "code_verifier": verifier,
    }
    status, tokens = token_endpoint(endpoint, exchange)
    out["exchange"] = status
    id_claims = claims(tokens["id_token"])
    out["claims"] = {
        "username": id_claims.get("cognito:username"),
        "email": id_claims.get("email"),
        "identities": id_claims.get("identities"),
    }

    step("a second federated sign-in in a new browser: the same user")
    verifier = secrets.token_urlsafe(48)
    again_hops = []
    location = federated_sign_in(Browser(endpoint), params, verifier, again_hops)
    _, query = location_query({"Location": location})
    status, tokens = token_endpoint(endpoint, {**exchange, "code": query["code"], "code_verifier": verifier})
    out["again"] = claims(tokens["id_token"]).get("cognito:username")

    def username_after(username):
        verifier = secrets.token_urlsafe(48)
        location = federated_sign_in(Browser(endpoint), params, verifier, [], username, params["password"])
        _, query = location_query({"Location": location})
        _, tokens = token_endpoint(endpoint, {**exchange, "code": query["code"], "code_verifier": verifier})
        return claims(tokens["id_token"]).get("cognito:username")

    step("AdminLinkProviderForUser: the provider's user una signs in as the pool's ulrike")
    idp = idp_client(endpoint)
    linked = params["linked"]
    source = {"ProviderName": params["provider"], "ProviderAttributeName": "Cognito_Subject"}
    idp.admin_link_provider_for_user(
        UserPoolId=params["appPool"],
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": linked["destination"]},
        SourceUser={**source, "ProviderAttributeValue": linked["sub"]},
    )
    out["linkedSignIn"] = username_after(linked["username"])
    out["ulrikeIdentities"] = [
        json.loads(a["Value"])
        for a in idp.admin_get_user(UserPoolId=params["appPool"], Username=linked["destination"])["UserAttributes"]
        if a["Name"] == "identities"
    ]
    out["linkSignedInAlready"] = refused(
        lambda: idp.admin_link_provider_for_user(
            UserPoolId=params["appPool"],
            DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": linked["destination"]},
            SourceUser={**source, "ProviderAttributeValue": out["claims"]["identities"][0]["userId"]},
        )
    )
    step("AdminDisableProviderForUser: the link goes")
    idp.admin_disable_provider_for_user(
        UserPoolId=params["appPool"], User={**source, "ProviderAttributeValue": linked["sub"]}
    )
    out["afterDisable"] = username_after(linked["username"])

    step("the sign-in page links the provider")
    authorize = urllib.parse.urlencode({
        "response_type": "code", "client_id": app["client"], "redirect_uri": app["callback"],
        "code_challenge": "x" * 43, "code_challenge_method": "S256",
    })
    _, _, page = Browser(endpoint).send("/login?" + authorize)
    out["loginButton"] = f"Sign in with {params['provider']}" in page
    return out


if __name__ == "__main__":
    run(main)
