//! The hosted pages in a real browser (Debian's Chromium, driven by playwright-core) with real
//! clients on either side of them: oidc-provider as the OpenID provider a pool federates with,
//! and Amplify v6's `signInWithRedirect` as the app. The scripts are in tests/clients/js.

use cognate_e2e::clients::Js;
use cognate_e2e::idp::types::{IdentityProviderTypeType, OAuthFlowType};
use cognate_e2e::{attr_of, ok, Server, PASSWORD};
use serde_json::{json, Value};

type CreateClient = cognate_e2e::idp::operation::create_user_pool_client::builders::CreateUserPoolClientFluentBuilder;

/// Debian's Chromium, which scripts/test.sh installs (`apt-get install chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium() -> &'static str {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test.sh installs it (apt-get install chromium)"
    );
    CHROMIUM
}

/// A public app client with the code flow, `scopes` and `callback`, signing in with
/// `provider`, with `more` settings; its id.
async fn code_client(
    server: &Server,
    pool: &str,
    (scopes, callback, provider): (&[&str], &str, &str),
    more: impl FnOnce(CreateClient) -> CreateClient,
) -> String {
    let created = server
        .idp()
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name("spa")
        .allowed_o_auth_flows_user_pool_client(true)
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .set_allowed_o_auth_scopes(Some(scopes.iter().map(|s| s.to_string()).collect()))
        .callback_urls(callback)
        .supported_identity_providers(provider);
    let client = ok(more(created).send().await).user_pool_client.expect("client");
    client.client_id.expect("client id")
}

/// Signing in through an OpenID provider that is not Cognate: oidc-provider, on a port of its
/// own, with a confidential client whose redirect URI is the pool domain's
/// `/oauth2/idpresponse` (as Cognito's is `https://{domain}/oauth2/idpresponse`). The browser
/// starts at the domain, signs in and consents at the provider, and comes back to the app with
/// a code; the tokens name the federated user `Upstream_{sub}` with the email and name that the
/// provider's userinfo endpoint answers (its ID token carries only `sub`), and the user exists
/// in the pool. A second authorization in the same browser finds the same user without the
/// provider's pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_is_the_identity_provider_of_a_hosted_sign_in_in_chromium() {
    let Some(js) = Js::get("oidc_provider_is_the_identity_provider_of_a_hosted_sign_in_in_chromium") else {
        return;
    };
    let chromium = chromium();
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    ok(server.idp().create_user_pool_domain().user_pool_id(&pool).domain("oidc-upstream").send().await);
    let domain_url = format!("http://oidc-upstream.auth.localhost:{}", server.port());
    let upstream_port = cognate_e2e::free_port();
    let issuer = format!("http://127.0.0.1:{upstream_port}");
    let (upstream_client, upstream_secret) = ("cognate-pool", "upstream-client-secret-0123456789");
    let mut provider = server
        .idp()
        .create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Upstream")
        .provider_type(IdentityProviderTypeType::Oidc)
        .attribute_mapping("email", "email")
        .attribute_mapping("name", "name");
    for (key, value) in [
        ("client_id", upstream_client),
        ("client_secret", upstream_secret),
        ("authorize_scopes", "openid email profile"),
        ("oidc_issuer", issuer.as_str()),
        ("attributes_request_method", "GET"),
    ] {
        provider = provider.provider_details(key, value);
    }
    ok(provider.send().await);
    let callback = format!("http://localhost:{}/callback", cognate_e2e::free_port());
    let client = code_client(&server, &pool, (&["openid", "email", "profile"], &callback, "Upstream"), |c| c).await;
    let sub = "248289761001";
    let account = json!({
        "login": "janedoe", "password": "upstream-Passw0rd", "sub": sub,
        "claims": {"email": "janedoe@example.com", "email_verified": true, "name": "Jane Doe"},
    });
    let r = js
        .run(
            "hosted-federation-browser.mjs",
            json!({
                "endpoint": server.url(), "domainUrl": domain_url, "provider": "Upstream",
                "upstreamPort": upstream_port, "upstreamClient": {"id": upstream_client, "secret": upstream_secret},
                "account": account, "clientId": client, "callback": callback, "chromium": chromium,
            }),
        )
        .await;
    assert_eq!(r["pages"], json!(["Upstream sign-in", "Upstream consent"]), "{r}");
    assert_eq!(r["wrongPassword"], "Wrong login or password.", "the provider checked the password: {r}");
    let hops: Vec<&str> = r["hops"].as_array().expect("hops").iter().filter_map(Value::as_str).collect();
    assert_eq!(hops.first(), Some(&"domain/oauth2/authorize"), "{r}");
    assert_eq!(hops.get(1), Some(&"upstream/auth"), "the domain sent the browser to the provider: {r}");
    assert_eq!(
        hops[hops.len().saturating_sub(2)..],
        ["domain/oauth2/idpresponse", "app/callback"],
        "back through the domain's /oauth2/idpresponse (the redirect URI registered at the provider): {r}"
    );
    assert!(!hops.iter().any(|h| h.starts_with("public")), "nothing went through the public URL's host: {r}");
    assert_eq!(r["idpResponseParams"], json!(["code", "iss", "state"]), "with RFC 9207's iss, taken in stride: {r}");
    assert_eq!(r["state"], "fed-1", "{r}");
    assert_eq!(r["exchange"], 200, "{r}");

    let username = format!("Upstream_{sub}");
    let id = &r["idClaims"];
    assert_eq!(id["cognito:username"], json!(username), "{r}");
    assert_eq!((&id["email"], &id["name"]), (&json!("janedoe@example.com"), &json!("Jane Doe")), "mapped: {r}");
    assert_eq!((&id["aud"], &id["token_use"]), (&json!(client), &json!("id")), "{r}");
    let identities = &id["identities"][0];
    assert_eq!(
        (&identities["providerName"], &identities["providerType"], &identities["userId"]),
        (&json!("Upstream"), &json!("OIDC"), &json!(sub)),
        "{r}"
    );
    assert_eq!(r["accessClaims"]["scope"], "openid email profile", "{r}");
    assert_eq!((&r["userInfo"]["email"], &r["userInfo"]["name"]), (&id["email"], &id["name"]), "{r}");
    assert_eq!(
        r["again"],
        json!({"hops": ["domain/oauth2/authorize", "upstream/auth", "domain/oauth2/idpresponse", "app/callback"], "username": username}),
        "the second time the provider's session answers, and the user is the same: {r}"
    );

    // What Cognate asked the provider, besides the browser's visits: discovery, keys, a code
    // exchanged with client_secret_post (oidc-provider refuses other methods for this client),
    // and userinfo with the access token, once per sign-in.
    let requests = r["upstreamRequests"].as_array().expect("requests");
    let count = |method: &str, path: &str, status: u16| {
        requests.iter().filter(|q| q["method"] == method && q["path"] == path && q["status"] == status).count()
    };
    assert_eq!(count("POST", "/token", 200), 2, "{r}");
    assert_eq!(count("GET", "/me", 200), 2, "{r}");
    assert!(count("GET", "/jwks", 200) >= 1, "{r}");
    assert!(count("GET", "/.well-known/openid-configuration", 200) >= 1, "{r}");

    let user = server.get_user(&pool, &username).await;
    assert_eq!(user.user_status().map(|s| s.as_str()), Some("EXTERNAL_PROVIDER"));
    let attributes = user.user_attributes();
    assert_eq!(attr_of(attributes, "email"), Some("janedoe@example.com"));
    assert_eq!(attr_of(attributes, "name"), Some("Jane Doe"));
    assert_eq!(attr_of(attributes, "sub"), id["sub"].as_str());
    let stored: Value = serde_json::from_str(attr_of(attributes, "identities").expect("identities")).expect("JSON");
    assert_eq!((&stored[0]["userId"], &stored[0]["providerName"]), (&json!(sub), &json!("Upstream")));
}

/// Amplify v6's hosted sign-in in a single-page app: `signInWithRedirect()` goes to
/// `https://{domain}/oauth2/authorize` (Amplify always uses https: Cognate serves the pool's
/// domain with `--tls self-signed`), the user signs in on the hosted page, Amplify exchanges
/// the code on its callback page (PKCE, the token endpoint across origins) and its
/// `getCurrentUser()` and `fetchAuthSession()` name the user; `signOut()` goes through the
/// domain's `/logout` to the registered sign-out URL, and the hosted session is gone with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplify_sign_in_with_redirect_and_sign_out_in_chromium() {
    let Some(js) = Js::get("amplify_sign_in_with_redirect_and_sign_out_in_chromium") else {
        return;
    };
    let chromium = chromium();
    let server = Server::sqlite_tls().await;
    let pool = server.new_pool(|p| p).await;
    ok(server.idp().create_user_pool_domain().user_pool_id(&pool).domain("amplify-app").send().await);
    let domain = format!("amplify-app.auth.localhost:{}", server.port());
    server.confirmed_user(&pool, "alice", &[("email", "alice@example.com")]).await;
    let origin = format!("http://localhost:{}", cognate_e2e::free_port());
    let (callback, signed_out) = (format!("{origin}/callback"), format!("{origin}/signed-out"));
    let client =
        code_client(&server, &pool, (&["openid", "email"], &callback, "COGNITO"), |c| c.logout_urls(&signed_out)).await;
    let r = js
        .run(
            "amplify-redirect-browser.mjs",
            json!({
                "domain": domain, "userPoolId": pool, "clientId": client, "origin": origin,
                "caFile": server.ca_pem(), "chromium": chromium, "username": "alice", "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(r["before"], json!({"error": "UserUnAuthenticatedException"}), "{r}");
    let authorize = &r["authorize"];
    assert_eq!(authorize["origin"], format!("https://{domain}"), "Amplify's authorize URL: {r}");
    let params = &authorize["params"];
    assert_eq!(
        (&params["client_id"], &params["redirect_uri"], &params["response_type"], &params["scope"]),
        (&json!(client), &json!(callback), &json!("code"), &json!("openid email")),
        "{r}"
    );
    assert_eq!((&params["identity_provider"], &params["code_challenge_method"]), (&json!("COGNITO"), &json!("S256")));
    assert_eq!(r["loginPage"], "Sign in", "{r}");

    let signed_in = &r["signedIn"];
    assert_eq!(signed_in["user"]["username"], "alice", "getCurrentUser: {r}");
    let (id, access) = (&signed_in["id"], &signed_in["access"]);
    assert_eq!(signed_in["user"]["userId"], id["sub"], "{r}");
    let iss = format!("{}/{pool}", server.url());
    assert_eq!(
        (&id["token_use"], &id["cognito:username"], &id["aud"], &id["email"], &id["iss"]),
        (&json!("id"), &json!("alice"), &json!(client), &json!("alice@example.com"), &json!(iss)),
        "fetchAuthSession's ID token: {r}"
    );
    assert_eq!(
        (&access["token_use"], &access["username"], &access["client_id"], &access["scope"]),
        (&json!("access"), &json!("alice"), &json!(client), &json!("openid email")),
        "fetchAuthSession's access token: {r}"
    );
    assert!(r["events"].as_array().is_some_and(|e| e.contains(&json!("signInWithRedirect"))), "{r}");
    assert!(!r["callbackUrl"].as_str().unwrap_or_default().contains("code="), "Amplify took the code away: {r}");

    assert_eq!(
        r["signOutHops"],
        json!([format!("https://{domain}/logout"), signed_out]),
        "signOut went through the domain's /logout to the sign-out URL: {r}"
    );
    assert_eq!(r["after"], json!({"error": "UserUnAuthenticatedException"}), "{r}");
    assert_eq!(r["signInAgain"], "Sign in", "the hosted session ended with the sign-out: {r}");
}
