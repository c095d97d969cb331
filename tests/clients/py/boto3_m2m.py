"""Resource servers and machine-to-machine tokens with boto3 and plain HTTP.

Parameters (JSON): endpoint, poolId.

Steps: resource servers created (one twice), described, listed a page at a time, updated;
an app client with a secret allowed client_credentials and two custom scopes (and one
asking for a scope that does not exist); the token endpoint with client_secret_basic and
client_secret_post, and refused for a wrong secret, a scope not granted, an unsupported
grant, a client without the flow; GetClientToken; the discovery document; a resource server
deleted; a prefix domain created, refused to another pool, a second one and a reserved word,
described, updated, deleted; UI customizations (refused CSS and image, pool-wide, a
client's own, the logo at its ImageUrl).

Result: the answers, keyed by step; tokens: basic (scope orders/read), post (all scopes),
getClientToken.
"""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from clientlib import idp_client, refused, run, step

# A 1x1 PNG, and CSS that styles a customizable class.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
CSS = ".submitButton-customizable { background-color: rgb(0, 51, 102); }"


def token_endpoint(url, form, basic=None):
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    try:
        with urllib.request.urlopen(request) as answer:
            return {"status": answer.status, "body": json.load(answer), "cache": answer.headers.get("Cache-Control")}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": json.load(err)}


def main(params):
    endpoint, pool = params["endpoint"], params["poolId"]
    idp = idp_client(endpoint)
    step("resource servers")
    scopes = [
        {"ScopeName": "read", "ScopeDescription": "Read orders"},
        {"ScopeName": "write", "ScopeDescription": "Write orders"},
    ]
    created = idp.create_resource_server(UserPoolId=pool, Identifier="orders", Name="Orders", Scopes=scopes)
    duplicate = refused(lambda: idp.create_resource_server(UserPoolId=pool, Identifier="orders", Name="Again"))
    idp.create_resource_server(UserPoolId=pool, Identifier="billing", Name="Billing", Scopes=scopes[:1])
    first = idp.list_resource_servers(UserPoolId=pool, MaxResults=1)
    second = idp.list_resource_servers(UserPoolId=pool, MaxResults=1, NextToken=first["NextToken"])
    updated = idp.update_resource_server(UserPoolId=pool, Identifier="billing", Name="Invoices")
    described = idp.describe_resource_server(UserPoolId=pool, Identifier="billing")["ResourceServer"]

    step("app clients")
    unknown_scope = refused(
        lambda: idp.create_user_pool_client(
            UserPoolId=pool,
            ClientName="bad",
            GenerateSecret=True,
            AllowedOAuthFlows=["client_credentials"],
            AllowedOAuthScopes=["orders/delete"],
            AllowedOAuthFlowsUserPoolClient=True,
        )
    )
    client = idp.create_user_pool_client(
        UserPoolId=pool,
        ClientName="service",
        GenerateSecret=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["orders/read", "orders/write"],
        AllowedOAuthFlowsUserPoolClient=True,
    )["UserPoolClient"]
    client_id, secret = client["ClientId"], client["ClientSecret"]
    no_flow = idp.create_user_pool_client(UserPoolId=pool, ClientName="plain", GenerateSecret=True)["UserPoolClient"]

    step("the token endpoint")
    url = f"{endpoint}/oauth2/token"
    grant = {"grant_type": "client_credentials"}
    basic = token_endpoint(url, {**grant, "scope": "orders/read"}, basic=f"{client_id}:{secret}")
    post = token_endpoint(url, {**grant, "client_id": client_id, "client_secret": secret})
    wrong_secret = token_endpoint(url, grant, basic=f"{client_id}:not-the-secret")
    not_granted = token_endpoint(url, {**grant, "scope": "billing/read"}, basic=f"{client_id}:{secret}")
    unsupported = token_endpoint(url, {"grant_type": "password"}, basic=f"{client_id}:{secret}")
    without_flow = token_endpoint(url, grant, basic=f"{no_flow['ClientId']}:{no_flow['ClientSecret']}")
    unknown_client = token_endpoint(url, grant, basic=f"nosuchclient:{secret}")

    step("GetClientToken")
    got = idp.get_client_token(ClientId=client_id, Secret=secret, Scopes=["orders/write"])["ClientAuthenticationResult"]
    refused_token = refused(lambda: idp.get_client_token(ClientId=client_id, Secret="notthesecretofthisclient00"))

    with urllib.request.urlopen(f"{endpoint}/{pool}/.well-known/openid-configuration") as answer:
        discovery = json.load(answer)

    step("domains")
    other_pool = idp.create_user_pool(PoolName="other")["UserPool"]["Id"]
    domain = {"created": idp.create_user_pool_domain(UserPoolId=pool, Domain="orders-auth")}
    domain["created"].pop("ResponseMetadata", None)
    domain["taken"] = refused(lambda: idp.create_user_pool_domain(UserPoolId=other_pool, Domain="orders-auth"))
    domain["second"] = refused(lambda: idp.create_user_pool_domain(UserPoolId=pool, Domain="orders-auth-2"))
    domain["reserved"] = refused(lambda: idp.create_user_pool_domain(UserPoolId=other_pool, Domain="my-cognito-app"))
    domain["described"] = idp.describe_user_pool_domain(Domain="orders-auth")["DomainDescription"]
    domain["unknown"] = idp.describe_user_pool_domain(Domain="nobody-has-this")["DomainDescription"]
    domain["poolShows"] = idp.describe_user_pool(UserPoolId=pool)["UserPool"].get("Domain")
    updated_domain = idp.update_user_pool_domain(UserPoolId=pool, Domain="orders-auth", ManagedLoginVersion=2)
    domain["updated"] = updated_domain.get("ManagedLoginVersion")
    domain["notOwner"] = refused(lambda: idp.delete_user_pool_domain(UserPoolId=other_pool, Domain="orders-auth"))
    idp.delete_user_pool_domain(UserPoolId=pool, Domain="orders-auth")
    domain["deletedTwice"] = refused(lambda: idp.delete_user_pool_domain(UserPoolId=pool, Domain="orders-auth"))
    domain["freed"] = "CloudFrontDomain" in idp.create_user_pool_domain(UserPoolId=other_pool, Domain="orders-auth")
    domain["poolAfter"] = idp.describe_user_pool(UserPoolId=pool)["UserPool"].get("Domain")

    step("UI customization")
    png = base64.b64decode(PNG)
    ui = {}
    ui["refusedCss"] = refused(lambda: idp.set_ui_customization(UserPoolId=pool, CSS="body { display: none }"))
    ui["refusedImage"] = refused(lambda: idp.set_ui_customization(UserPoolId=pool, ImageFile=b"GIF89a not a png"))
    pool_wide = idp.set_ui_customization(UserPoolId=pool, CSS=CSS, ImageFile=png)["UICustomization"]
    ui["poolWide"] = {"clientId": pool_wide.get("ClientId"), "css": pool_wide.get("CSS"), "image": "ImageUrl" in pool_wide}
    with urllib.request.urlopen(pool_wide["ImageUrl"]) as answer:
        ui["logo"] = {"type": answer.headers.get("Content-Type"), "same": answer.read() == png}
    ui["clientFallsBack"] = idp.get_ui_customization(UserPoolId=pool, ClientId=client_id)["UICustomization"].get("ClientId")
    idp.set_ui_customization(UserPoolId=pool, ClientId=client_id, CSS=".label-customizable { color: red; }")
    own = idp.get_ui_customization(UserPoolId=pool, ClientId=client_id)["UICustomization"]
    ui["clientOwn"] = {"clientId": own.get("ClientId"), "css": own.get("CSS"), "image": "ImageUrl" in own}
    ui["unknownClient"] = refused(lambda: idp.set_ui_customization(UserPoolId=pool, ClientId="nosuchclient", CSS=""))

    step("identity providers")
    idps = {}
    oidc_details = {
        "client_id": "upstream-client",
        "client_secret": "upstream-secret-value",
        "authorize_scopes": "openid email",
        "oidc_issuer": "https://idp.example.com",
        "attributes_request_method": "GET",
    }
    created_idp = idp.create_identity_provider(
        UserPoolId=pool,
        ProviderName="Upstream",
        ProviderType="OIDC",
        ProviderDetails=oidc_details,
        AttributeMapping={"email": "email"},
        IdpIdentifiers=["example.com"],
        AcrMapping={"Level2": "urn:example:loa:2"},
    )["IdentityProvider"]
    idps["created"] = {k: created_idp.get(k) for k in ("ProviderName", "ProviderType", "ProviderDetails", "IdpIdentifiers")}
    idps["acr"] = idp.describe_identity_provider(UserPoolId=pool, ProviderName="Upstream")["IdentityProvider"].get(
        "AcrMapping"
    )
    idps["duplicate"] = refused(
        lambda: idp.create_identity_provider(
            UserPoolId=pool, ProviderName="Upstream", ProviderType="OIDC", ProviderDetails=oidc_details
        )
    )
    idps["identifierTaken"] = refused(
        lambda: idp.create_identity_provider(
            UserPoolId=pool, ProviderName="Other", ProviderType="OIDC", ProviderDetails=oidc_details,
            IdpIdentifiers=["example.com"],
        )
    )
    idps["googleMisnamed"] = refused(
        lambda: idp.create_identity_provider(
            UserPoolId=pool, ProviderName="MyGoogle", ProviderType="Google",
            ProviderDetails={"client_id": "g", "client_secret": "s", "authorize_scopes": "email"},
        )
    )
    idps["missingDetails"] = refused(
        lambda: idp.create_identity_provider(
            UserPoolId=pool, ProviderName="Bare", ProviderType="OIDC", ProviderDetails={"client_id": "x"}
        )
    )
    idp.create_identity_provider(
        UserPoolId=pool, ProviderName="Google", ProviderType="Google",
        ProviderDetails={"client_id": "g", "client_secret": "s", "authorize_scopes": "email"},
    )
    idps["byIdentifier"] = idp.get_identity_provider_by_identifier(UserPoolId=pool, IdpIdentifier="example.com")[
        "IdentityProvider"
    ]["ProviderName"]
    first_page = idp.list_identity_providers(UserPoolId=pool, MaxResults=1)
    second_page = idp.list_identity_providers(UserPoolId=pool, MaxResults=1, NextToken=first_page["NextToken"])
    idps["pages"] = [[p["ProviderName"] for p in page["Providers"]] for page in (first_page, second_page)]
    updated_idp = idp.update_identity_provider(
        UserPoolId=pool, ProviderName="Upstream", AttributeMapping={"email": "mail", "name": "name"}
    )["IdentityProvider"]
    idps["updatedMapping"] = updated_idp["AttributeMapping"]
    idps["secretKept"] = updated_idp["ProviderDetails"].get("client_secret")
    federated = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="federated", SupportedIdentityProviders=["COGNITO", "Upstream", "Google"]
    )["UserPoolClient"]
    idps["clientProviders"] = federated["SupportedIdentityProviders"]
    idps["unknownProvider"] = refused(
        lambda: idp.create_user_pool_client(UserPoolId=pool, ClientName="x", SupportedIdentityProviders=["Nope"])
    )
    idp.delete_identity_provider(UserPoolId=pool, ProviderName="Google")
    idps["deleted"] = refused(lambda: idp.describe_identity_provider(UserPoolId=pool, ProviderName="Google"))

    step("the signing certificate")
    from cryptography import x509

    certificate = idp.get_signing_certificate(UserPoolId=pool)["Certificate"]
    again = idp.get_signing_certificate(UserPoolId=pool)["Certificate"]
    parsed = x509.load_der_x509_certificate(base64.b64decode(certificate))
    with urllib.request.urlopen(f"{endpoint}/{pool}/.well-known/jwks.json") as answer:
        moduli = [int.from_bytes(base64.urlsafe_b64decode(k["n"] + "=="), "big") for k in json.load(answer)["keys"]]
    signing = {
        "stable": certificate == again,
        "subject": parsed.subject.rfc4514_string(),
        "keyInJwks": parsed.public_key().public_numbers().n in moduli,
        "selfSigned": parsed.issuer == parsed.subject,
    }

    step("a resource server deleted")
    idp.delete_resource_server(UserPoolId=pool, Identifier="billing")
    gone = refused(lambda: idp.describe_resource_server(UserPoolId=pool, Identifier="billing"))

    return {
        "clientId": client_id,
        "created": created["ResourceServer"],
        "duplicate": duplicate,
        "pages": [[s["Identifier"] for s in page["ResourceServers"]] for page in (first, second)],
        "secondPageHasNext": "NextToken" in second,
        "updated": updated["ResourceServer"],
        "described": described,
        "unknownScope": unknown_scope,
        "basic": {"status": basic["status"], "keys": sorted(basic["body"]), "cache": basic.get("cache")},
        "post": {"status": post["status"], "type": post["body"].get("token_type"), "expires": post["body"].get("expires_in")},
        "refusals": {
            "wrongSecret": wrong_secret,
            "notGranted": not_granted,
            "unsupported": unsupported,
            "withoutFlow": without_flow,
            "unknownClient": unknown_client,
        },
        "getClientToken": {"type": got.get("TokenType"), "expires": got.get("ExpiresIn")},
        "getClientTokenRefused": refused_token,
        "discovery": {"token_endpoint": discovery.get("token_endpoint"), "auth": discovery.get("token_endpoint_auth_methods_supported")},
        "gone": gone,
        "domain": domain,
        "ui": ui,
        "idps": idps,
        "signing": signing,
        "tokens": {
            "basic": basic["body"].get("access_token"),
            "post": post["body"].get("access_token"),
            "getClientToken": got.get("AccessToken"),
        },
    }


if __name__ == "__main__":
    run(main)
