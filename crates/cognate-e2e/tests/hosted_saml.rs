//! Signing in through a SAML 2.0 identity provider (SP-initiated, as Cognito's SP): the app's
//! authorize names the provider; Cognate sends the browser to the IdP's SingleSignOnService
//! with an AuthnRequest (HTTP-Redirect binding); the IdP, samlify's IdP side in
//! tests/clients/js/saml-idp.mjs, answers a signed Response, posted to /saml2/idpresponse;
//! the app gets its code and the ID token has the mapped attributes and the `identities`
//! claim (metadata given as MetadataFile, or as a MetadataURL this test serves).
//! Responses that are tampered with, signed by another key, for another audience or ACS,
//! expired, for another request, replayed, or wrapped (a second, unsigned Assertion) are
//! refused and create nobody. The browser is plain HTTP without redirects followed.

use cognate_e2e::clients::Js;
use cognate_e2e::idp::types::{IdentityProviderTypeType, OAuthFlowType};
use cognate_e2e::{b64url_decode, ok, unique_name, url_encode, Server};
use serde_json::{json, Value};

const CALLBACK: &str = "http://localhost:3000/callback";
const SSO_URL: &str = "https://idp.example.test/sso";
const ENTITY_ID: &str = "https://idp.example.test/saml";

struct Setup {
    server: Server,
    js: Js,
    pool: String,
    client_id: String,
    client_secret: String,
    /// The IdP's settings for saml-idp.mjs (entity ID, SSO URL, key, certificate).
    idp: Value,
    /// Another key and certificate, not in the metadata.
    stranger: Value,
    http: reqwest::Client,
}

async fn keys(js: &Js) -> Value {
    js.run("saml-idp.mjs", json!({"command": "keys"})).await
}

/// Serves `metadata` at `http://127.0.0.1:{port}/metadata` until the test ends: the
/// provider's MetadataURL.
async fn serve_metadata(metadata: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/metadata", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/samlmetadata+xml\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{metadata}",
                metadata.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    url
}

/// How the provider is given its metadata.
enum Metadata {
    File,
    Url,
}

async fn setup(js: Js, given: Metadata) -> Setup {
    let server = Server::sqlite().await;
    let pool = server.new_pool(|p| p).await;
    let (own, stranger) = (keys(&js).await, keys(&js).await);
    let idp = json!({"entityID": ENTITY_ID, "ssoUrl": SSO_URL, "key": own["key"], "cert": own["cert"]});
    let metadata = js.run("saml-idp.mjs", json!({"command": "metadata", "idp": idp})).await;
    let metadata = metadata["metadata"].as_str().expect("metadata").to_owned();
    let (key, value) = match given {
        Metadata::File => ("MetadataFile", metadata),
        Metadata::Url => ("MetadataURL", serve_metadata(metadata).await),
    };
    ok(server
        .idp()
        .create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Corp")
        .provider_type(IdentityProviderTypeType::Saml)
        .provider_details(key, value)
        .attribute_mapping("email", "email")
        .attribute_mapping("given_name", "given_name")
        .send()
        .await);
    let client = ok(server
        .idp()
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(unique_name("app"))
        .generate_secret(true)
        .allowed_o_auth_flows_user_pool_client(true)
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_scopes("openid")
        .allowed_o_auth_scopes("email")
        .callback_urls(CALLBACK)
        .supported_identity_providers("Corp")
        .send()
        .await)
    .user_pool_client
    .expect("client");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http");
    Setup {
        server,
        js,
        pool,
        client_id: client.client_id.expect("id"),
        client_secret: client.client_secret.expect("secret"),
        idp,
        stranger,
        http,
    }
}

/// The app's authorize naming the provider: where Cognate sends the browser.
async fn authorize(s: &Setup) -> String {
    let url = format!(
        "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid+email&identity_provider=Corp",
        s.server.url(),
        s.client_id,
        url_encode(CALLBACK)
    );
    let answer = s.http.get(url).send().await.expect("authorize");
    assert_eq!(answer.status().as_u16(), 302);
    answer.headers()["location"].to_str().expect("location").to_owned()
}

/// The IdP's signed response for the AuthnRequest at `location` (`override` as saml-idp.mjs).
async fn respond(s: &Setup, idp: &Value, location: &str, nameid: &str, override_: Value) -> Value {
    let user = json!({"nameID": nameid, "attributes": {"email": nameid, "given_name": "Sam"}});
    let input = json!({"command": "respond", "idp": idp, "location": location, "user": user, "override": override_});
    s.js.run("saml-idp.mjs", input).await
}

/// Posts the response to the ACS: (status, Location, body).
async fn post(s: &Setup, response: &Value) -> (u16, Option<String>, String) {
    let body = format!(
        "SAMLResponse={}&RelayState={}",
        url_encode(response["SAMLResponse"].as_str().expect("response")),
        url_encode(response["RelayState"].as_str().expect("relay state"))
    );
    let answer = s
        .http
        .post(format!("{}/saml2/idpresponse", s.server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("acs");
    let status = answer.status().as_u16();
    let location = answer.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
    (status, location, answer.text().await.unwrap_or_default())
}

async fn user_count(s: &Setup) -> usize {
    ok(s.server.idp().list_users().user_pool_id(&s.pool).send().await).users().len()
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&b64url_decode(jwt.split('.').nth(1).expect("payload"))).expect("claims")
}

#[tokio::test]
async fn sign_in_through_a_saml_identity_provider() {
    let Some(js) = Js::get("sign_in_through_a_saml_identity_provider") else {
        return;
    };
    let s = setup(js, Metadata::File).await;
    let location = authorize(&s).await;
    assert!(location.starts_with(&format!("{SSO_URL}?SAMLRequest=")), "{location}");
    let response = respond(&s, &s.idp, &location, "sam@example.com", json!({})).await;
    let request = &response["request"];
    let acs = format!("{}/saml2/idpresponse", s.server.url());
    assert_eq!(request["acs"], json!(acs), "{request}");
    assert_eq!(request["issuer"], json!(format!("urn:amazon:cognito:sp:{}", s.pool)), "{request}");
    assert_eq!(request["destination"], json!(SSO_URL), "{request}");
    assert!(request["id"].as_str().is_some_and(|id| id.len() > 20), "{request}");

    let (status, callback, body) = post(&s, &response).await;
    let callback = callback.unwrap_or_else(|| panic!("back to the app: {status} {body}"));
    let code = callback
        .strip_prefix(&format!("{CALLBACK}?code="))
        .unwrap_or_else(|| panic!("{callback}"))
        .split('&')
        .next()
        .expect("code");
    let tokens: Value = s
        .http
        .post(format!("{}/oauth2/token", s.server.url()))
        .basic_auth(&s.client_id, Some(&s.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={code}&redirect_uri={}", url_encode(CALLBACK)))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let id = claims(tokens["id_token"].as_str().unwrap_or_else(|| panic!("{tokens}")));
    assert_eq!(id["email"], json!("sam@example.com"), "{id}");
    assert_eq!(id["cognito:username"], json!("Corp_sam@example.com"), "{id}");
    let identities = &id["identities"][0];
    assert_eq!(identities["providerType"], json!("SAML"), "{id}");
    assert_eq!(identities["providerName"], json!("Corp"), "{id}");
    assert_eq!(identities["userId"], json!("sam@example.com"), "{id}");
    assert_eq!(identities["issuer"], json!(ENTITY_ID), "the IdP's entity ID, as Cognito names it: {id}");
    let user = s.server.get_user(&s.pool, "Corp_sam@example.com").await;
    assert_eq!(cognate_e2e::attr_of(user.user_attributes(), "given_name"), Some("Sam"));

    // A response signed as a whole (the Response's signature covers its Assertion), not
    // the Assertion by itself, signs in too.
    let location = authorize(&s).await;
    let signed = json!({"signAssertion": false, "signMessage": true});
    let whole = respond(&s, &s.idp, &location, "whole@example.com", signed).await;
    let (status, callback, body) = post(&s, &whole).await;
    assert!(callback.is_some_and(|c| c.starts_with(&format!("{CALLBACK}?code="))), "{status} {body}");
    s.server.get_user(&s.pool, "Corp_whole@example.com").await;

    // The same response again: its request is spent.
    let (status, callback, body) = post(&s, &response).await;
    assert!(status >= 400 && callback.is_none() && body.contains("used already"), "replay: {status} {body}");
}

#[tokio::test]
async fn forged_and_misdirected_saml_responses_are_refused() {
    let Some(js) = Js::get("forged_and_misdirected_saml_responses_are_refused") else {
        return;
    };
    let s = setup(js, Metadata::File).await;
    let other_key =
        json!({"entityID": ENTITY_ID, "ssoUrl": SSO_URL, "key": s.stranger["key"], "cert": s.stranger["cert"]});
    // Another key, presenting the metadata's certificate in KeyInfo: the signature fails.
    let other_key_own_cert =
        json!({"entityID": ENTITY_ID, "ssoUrl": SSO_URL, "key": s.stranger["key"], "cert": s.idp["cert"]});
    let past = "2020-01-01T00:00:00.000Z";
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "an attribute changed after signing",
            s.idp.clone(),
            json!({"replace": [["<saml:AttributeValue xsi:type=\"xs:string\">Sam<", "<saml:AttributeValue xsi:type=\"xs:string\">Eve<"]]}),
            "digest mismatch",
        ),
        (
            "signed by a key not in the metadata",
            other_key,
            json!({}),
            "a certificate that is not the identity provider",
        ),
        (
            "signed by another key, the metadata's certificate shown",
            other_key_own_cert,
            json!({}),
            "not signed by the identity provider",
        ),
        (
            "for another audience",
            s.idp.clone(),
            json!({"audience": "urn:amazon:cognito:sp:us-east-1_other"}),
            "another audience",
        ),
        ("expired", s.idp.clone(), json!({"notBefore": past, "notOnOrAfter": "2020-01-01T00:05:00.000Z"}), "expired"),
        (
            "unsolicited: answering another request",
            s.idp.clone(),
            json!({"inResponseTo": "_someone-elses"}),
            "another request",
        ),
        ("for another ACS", s.idp.clone(), json!({"destination": "https://evil.test/acs"}), "another destination"),
        ("wrapped: a second, unsigned Assertion", s.idp.clone(), json!({"wrap": true}), "2 assertions"),
        (
            "wrapped around a signed Response",
            s.idp.clone(),
            json!({"signAssertion": false, "signMessage": true, "wrap": true}),
            "2 assertions",
        ),
        (
            "the signed Response's Assertion changed",
            s.idp.clone(),
            json!({"signAssertion": false, "signMessage": true, "replace": [["eve@example.com", "root@example.com"]]}),
            "digest mismatch",
        ),
    ];
    for (what, idp, override_, expected) in cases {
        let location = authorize(&s).await;
        let response = respond(&s, &idp, &location, "eve@example.com", override_).await;
        let (status, callback, body) = post(&s, &response).await;
        assert!(status == 400 && callback.is_none() && body.contains(expected), "{what}: {status} {callback:?} {body}");
        assert_eq!(user_count(&s).await, 0, "{what}: nobody created");
    }
    // A response posted with no RelayState (IdP-initiated) is not supported.
    let location = authorize(&s).await;
    let mut response = respond(&s, &s.idp, &location, "eve@example.com", json!({})).await;
    response["RelayState"] = json!("");
    let (status, _, body) = post(&s, &response).await;
    assert!(status == 501 && body.contains("IdP-initiated"), "{status} {body}");
    assert_eq!(user_count(&s).await, 0);
}

/// A provider given by MetadataURL: its metadata is fetched (at the sign-in's start and at
/// the response) and the sign-in works as with a MetadataFile.
#[tokio::test]
async fn sign_in_with_metadata_from_a_url() {
    let Some(js) = Js::get("sign_in_with_metadata_from_a_url") else {
        return;
    };
    let s = setup(js, Metadata::Url).await;
    let location = authorize(&s).await;
    assert!(location.starts_with(&format!("{SSO_URL}?SAMLRequest=")), "{location}");
    let response = respond(&s, &s.idp, &location, "url@example.com", json!({})).await;
    let (status, callback, body) = post(&s, &response).await;
    assert!(callback.is_some_and(|c| c.starts_with(&format!("{CALLBACK}?code="))), "{status} {body}");
    let user = s.server.get_user(&s.pool, "Corp_url@example.com").await;
    assert_eq!(cognate_e2e::attr_of(user.user_attributes(), "email"), Some("url@example.com"));
}
