//! The InboundFederation trigger (LambdaConfig.InboundFederation, V1_0), and PreSignUp for a
//! federated user's first sign-in (`PreSignUp_ExternalProvider`): on a hosted-UI
//! sign-in through an OpenID Connect provider (another Cognate user pool, as in clients.rs),
//! the pool's function, a Node handler in tests/lambda run by the stand-in for Lambda, gets
//! what the provider said (its token response, the ID token's claims, its userinfo answer)
//! and answers `userAttributesToMap`, which is what the provider's AttributeMapping maps in
//! place of the provider's claims; a function that throws refuses the sign-in. The browser
//! is plain HTTP without redirects followed (a cookie jar of its own).

use std::collections::BTreeMap;

use cognate_e2e::idp::operation::create_user_pool_client::builders::CreateUserPoolClientFluentBuilder as CreateClient;
use cognate_e2e::idp::types::{
    IdentityProviderTypeType, InboundFederationLambdaType, InboundFederationLambdaVersionType, LambdaConfigType,
    OAuthFlowType, UserPoolClientType,
};
use cognate_e2e::lambda_host::LambdaHost;
use cognate_e2e::{attr_of, ok, unique_name, url_encode, Server, PASSWORD};
use serde_json::json;

const CALLBACK: &str = "http://localhost:3000/callback";

/// A browser that does not follow redirects and keeps the cookies it is given (everything
/// here is on the one server).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

/// One answer: status, Location (absolute), body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { http, base: server.url(), cookies: BTreeMap::new() }
    }

    async fn send(&mut self, url: &str, form: Option<&[(String, String)]>) -> Answer {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.base) };
        let mut request = match form {
            Some(fields) => {
                let body: Vec<String> =
                    fields.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect();
                self.http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body.join("&"))
            }
            None => self.http.get(&url),
        };
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", jar.join("; "));
        }
        let answer = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        for set in answer.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let status = answer.status().as_u16();
        let location = answer.headers().get("location").and_then(|l| l.to_str().ok()).map(|l| {
            if l.starts_with('/') {
                format!("{}{l}", self.base)
            } else {
                l.to_owned()
            }
        });
        Answer { status, location, body: answer.text().await.unwrap_or_default() }
    }
}

/// The hidden fields of the page's form, unescaped.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    let unescape = |v: &str| {
        v.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    };
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.strip_prefix(" value=\"")?.split_once('"')?.0;
            Some((name.to_owned(), unescape(value)))
        })
        .collect()
}

/// The app's authorize with the provider named -> the provider's authorize -> its sign-in
/// page, signed in as `username` -> /oauth2/idpresponse: its answer.
async fn sign_in_through_the_provider(server: &Server, app_client: &str, username: &str) -> Answer {
    let mut browser = Browser::new(server);
    let authorize = format!(
        "/oauth2/authorize?response_type=code&client_id={app_client}&redirect_uri={}&scope=openid+email&\
         identity_provider=Upstream",
        url_encode(CALLBACK)
    );
    let to_provider = browser.send(&authorize, None).await.location.expect("to the provider");
    let to_login = browser.send(&to_provider, None).await.location.expect("to the provider's sign-in page");
    let page = browser.send(&to_login, None).await;
    assert_eq!(page.status, 200, "the sign-in page: {}", page.body);
    let mut form = hidden_fields(&page.body);
    form.extend([("username".to_owned(), username.to_owned()), ("password".to_owned(), PASSWORD.to_owned())]);
    let back = browser.send("/login", Some(&form)).await;
    let back = back.location.unwrap_or_else(|| panic!("signed in at the provider: {} {}", back.status, back.body));
    assert!(back.contains("/oauth2/idpresponse?"), "{back}");
    browser.send(&back, None).await
}

/// A confidential app client of `pool` for the code flow with these scopes and callback,
/// after `configure`.
async fn code_client(
    server: &Server,
    pool: &str,
    scopes: &[&str],
    callback: &str,
    configure: impl FnOnce(CreateClient) -> CreateClient,
) -> UserPoolClientType {
    let create = server
        .idp()
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name(unique_name("app"))
        .generate_secret(true)
        .allowed_o_auth_flows_user_pool_client(true)
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .set_allowed_o_auth_scopes(Some(scopes.iter().map(|s| s.to_string()).collect()))
        .callback_urls(callback);
    ok(configure(create).send().await).user_pool_client.expect("client")
}

/// The sub of a user of `pool`.
async fn sub_of(server: &Server, pool: &str, username: &str) -> String {
    let user = server.get_user(pool, username).await;
    attr_of(user.user_attributes(), "sub").expect("sub").to_owned()
}

/// The provider's users sign in through an InboundFederation function: the attributes mapped
/// are the ones it answers (the email lower-cased, a nickname it makes; given_name, which
/// the AttributeMapping maps from the provider, left out), its event holds what the provider
/// said, it runs again on the next sign-in, and when it throws the sign-in is refused and no
/// user is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_federation_maps_what_the_function_answers() {
    let host = LambdaHost::start(std::path::Path::new("python3"));
    let server = Server::sqlite_with(&["--lambda-endpoint", &host.url]).await;
    // The provider: a pool with users and a confidential client whose callback is the app
    // pool's /oauth2/idpresponse.
    let upstream = server.new_pool(|p| p).await;
    let attributes = [("email", "Ursula@Example.COM"), ("email_verified", "true"), ("given_name", "Ursula")];
    server.confirmed_user(&upstream, "ursula", &attributes).await;
    let blocked = [("email", "mallory@blocked.example"), ("email_verified", "true")];
    server.confirmed_user(&upstream, "mallory", &blocked).await;
    let idp_response = format!("{}/oauth2/idpresponse", server.url());
    let idp_client = code_client(&server, &upstream, &["openid", "email", "profile"], &idp_response, |c| c).await;

    // The app: its pool has the function and names the provider; its client supports it.
    let function = "arn:aws:lambda:us-east-1:000000000000:function:inbound-federation";
    let inbound = InboundFederationLambdaType::builder()
        .lambda_version(InboundFederationLambdaVersionType::V10)
        .lambda_arn(function)
        .build()
        .expect("InboundFederation");
    let app_pool = server
        .new_pool(|p| {
            p.lambda_config(
                LambdaConfigType::builder()
                    .inbound_federation(inbound)
                    .pre_sign_up("arn:aws:lambda:us-east-1:000000000000:function:pre-sign-up")
                    .build(),
            )
        })
        .await;
    let described = ok(server.idp().describe_user_pool().user_pool_id(&app_pool).send().await);
    let config = described.user_pool.and_then(|p| p.lambda_config).and_then(|c| c.inbound_federation);
    assert_eq!(config.map(|c| c.lambda_arn), Some(function.to_owned()), "DescribeUserPool shows the function");
    let mut provider = server
        .idp()
        .create_identity_provider()
        .user_pool_id(&app_pool)
        .provider_name("Upstream")
        .provider_type(IdentityProviderTypeType::Oidc)
        .attribute_mapping("email", "email")
        .attribute_mapping("given_name", "given_name")
        .attribute_mapping("nickname", "nickname");
    let secret = idp_client.client_secret.clone().expect("secret");
    let issuer = format!("{}/{upstream}", server.url());
    for (key, value) in [
        ("client_id", idp_client.client_id.as_deref().expect("id")),
        ("client_secret", secret.as_str()),
        ("authorize_scopes", "openid email profile"),
        ("oidc_issuer", issuer.as_str()),
        ("attributes_request_method", "GET"),
    ] {
        provider = provider.provider_details(key, value);
    }
    ok(provider.send().await);
    let app_client =
        code_client(&server, &app_pool, &["openid", "email"], CALLBACK, |c| c.supported_identity_providers("Upstream"))
            .await
            .client_id
            .expect("client id");

    let answer = sign_in_through_the_provider(&server, &app_client, "ursula").await;
    let callback = answer.location.unwrap_or_else(|| panic!("back to the app: {} {}", answer.status, answer.body));
    assert!(callback.starts_with(&format!("{CALLBACK}?code=")), "{callback}");
    let ursula = sub_of(&server, &upstream, "ursula").await;
    let user = server.get_user(&app_pool, &format!("Upstream_{ursula}")).await;
    let attributes = user.user_attributes();
    assert_eq!(attr_of(attributes, "email"), Some("ursula@example.com"), "the function's email");
    assert_eq!(attr_of(attributes, "nickname"), Some("Upstream:ursula"), "an attribute the function made");
    assert_eq!(attr_of(attributes, "given_name"), None, "mapped from the provider, but left out by the function");

    let events = host.events_of("inbound-federation").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (&event["version"], &event["triggerSource"]),
        (&json!("1"), &json!("InboundFederation_ExternalProvider"))
    );
    assert_eq!((&event["userPoolId"], &event["region"]), (&json!(app_pool), &json!("us-east-1")));
    assert_eq!(event["userName"], json!(format!("Upstream_{ursula}")));
    assert_eq!(event["callerContext"]["clientId"], json!(app_client));
    let request = &event["request"];
    assert_eq!((&request["providerName"], &request["providerType"]), (&json!("Upstream"), &json!("OIDC")));
    let said = &request["attributes"];
    assert_eq!((&said["idToken"]["sub"], &said["idToken"]["iss"]), (&json!(ursula), &json!(issuer)), "{said}");
    assert_eq!(said["userInfo"]["email"], "Ursula@Example.COM", "{said}");
    assert_eq!(said["userInfo"]["given_name"], "Ursula", "{said}");
    assert_eq!(said["tokenResponse"]["token_type"], "Bearer", "{said}");
    assert!(said["tokenResponse"]["access_token"].as_str().is_some_and(|t| !t.is_empty()), "{said}");

    // The user's creation ran PreSignUp, as an external provider's sign-up.
    let sign_ups = host.events_of("pre-sign-up").await;
    assert_eq!(sign_ups.len(), 1, "{sign_ups:?}");
    assert_eq!(sign_ups[0]["triggerSource"], "PreSignUp_ExternalProvider");
    assert_eq!(sign_ups[0]["userName"], json!(format!("Upstream_{ursula}")));
    assert_eq!(sign_ups[0]["request"]["userAttributes"]["email"], "ursula@example.com");

    // The next sign-in runs the function again and finds the same user.
    let again = sign_in_through_the_provider(&server, &app_client, "ursula").await;
    assert!(again.location.is_some_and(|l| l.starts_with(&format!("{CALLBACK}?code="))));
    assert_eq!(host.events_of("inbound-federation").await.len(), 2);
    assert_eq!(host.events_of("pre-sign-up").await.len(), 1, "no new user, no PreSignUp");
    assert_eq!(server.list_all_users(&app_pool).await.len(), 1);

    // A function that throws refuses the sign-in: no code for the app, no user.
    let refused = sign_in_through_the_provider(&server, &app_client, "mallory").await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.location.is_none());
    assert!(
        refused.body.contains("InboundFederation failed with error mallory@blocked.example may not sign in here."),
        "{}",
        refused.body
    );
    let mallory = sub_of(&server, &upstream, "mallory").await;
    let missing =
        server.idp().admin_get_user().user_pool_id(&app_pool).username(format!("Upstream_{mallory}")).send().await;
    assert!(missing.is_err(), "no user for a refused sign-in");
    assert_eq!(server.list_all_users(&app_pool).await.len(), 1);
}
