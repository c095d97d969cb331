//! The JSON 1.1 protocol layer and request authentication, with raw HTTP
//! requests signed here with `aws-sigv4` (and with the SDK where it can show
//! the same thing). These do not depend on the store, so they run on SQLite.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use cognate_e2e::{
    expect_err, ok, sigv4_headers, unique_name, RawResponse, Server, Signing, ACCESS_KEY, IDENTITY_PREFIX, IDP_PREFIX,
    REGION, SECRET_KEY,
};
use serde_json::json;

fn idp(op: &str) -> String {
    format!("{IDP_PREFIX}.{op}")
}

fn identity(op: &str) -> String {
    format!("{IDENTITY_PREFIX}.{op}")
}

/// The headers every error response must carry.
#[track_caller]
fn assert_error_headers(resp: &RawResponse, code: &str) {
    let rid = resp.header("x-amzn-requestid").expect("x-amzn-RequestId header on an error");
    assert!(!rid.is_empty());
    let et = resp.header("x-amzn-errortype").expect("x-amzn-ErrorType header on an error");
    assert_eq!(et.split(':').next(), Some(code), "x-amzn-ErrorType {et:?} does not name {code}");
}

async fn pool_count(server: &Server) -> usize {
    ok(server.idp().list_user_pools().max_results(60).send().await).user_pools().len()
}

async fn new_pool(server: &Server) -> String {
    ok(server.idp().create_user_pool().pool_name(unique_name("proto")).send().await)
        .user_pool
        .and_then(|p| p.id)
        .unwrap()
}

#[tokio::test]
async fn health_answers_200() {
    let server = Server::sqlite().await;
    let resp = server.raw().get("/health").await;
    assert_eq!(resp.status, 200, "{resp:?}");
}

#[tokio::test]
async fn success_responses_carry_request_id_and_content_type() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let resp = raw.idp("ListUserPools", json!({"MaxResults": 10})).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.header("x-amzn-requestid").is_some_and(|v| !v.is_empty()));
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/x-amz-json-1.1"), "content-type {ct:?}");
    assert_eq!(resp.json()["UserPools"], json!([]));
    // Request ids differ between requests.
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let r = raw.idp("ListUserPools", json!({"MaxResults": 10})).await;
        ids.insert(r.header("x-amzn-requestid").unwrap());
    }
    assert_eq!(ids.len(), 5, "request ids repeat: {ids:?}");
}

#[tokio::test]
async fn unsigned_admin_call_is_rejected() {
    let server = Server::sqlite().await;
    let pool = new_pool(&server).await;
    let raw = server.raw();
    let resp = raw.call(&idp("DescribeUserPool"), &json!({"UserPoolId": pool}).to_string(), Signing::None).await;
    resp.assert_error("MissingAuthenticationTokenException");
    assert_error_headers(&resp, "MissingAuthenticationTokenException");
    assert!(!resp.body.contains("\"UserPool\""), "no pool data may leak: {}", resp.body);

    // An unsigned CreateUserPool creates nothing.
    let before = pool_count(&server).await;
    raw.call(&idp("CreateUserPool"), &json!({"PoolName": "unsigned"}).to_string(), Signing::None)
        .await
        .assert_error("MissingAuthenticationTokenException");
    assert_eq!(pool_count(&server).await, before);

    // cognito-identity too.
    raw.call(&identity("ListIdentityPools"), &json!({"MaxResults": 10}).to_string(), Signing::None)
        .await
        .assert_error("MissingAuthenticationTokenException");
}

#[tokio::test]
async fn wrong_secret_is_rejected() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let before = pool_count(&server).await;
    let resp = raw
        .call(&idp("CreateUserPool"), &json!({"PoolName": "wrong-secret"}).to_string(), Signing::wrong_secret())
        .await;
    resp.assert_error("InvalidSignatureException");
    assert_error_headers(&resp, "InvalidSignatureException");
    assert_eq!(pool_count(&server).await, before, "no pool was created");

    // The SDK sees the same code.
    let bad = server.sdk_config_with(Credentials::new(ACCESS_KEY, "definitely-wrong", None, None, "e2e"));
    let client = cognate_e2e::idp::Client::new(&bad);
    let err = expect_err(client.create_user_pool().pool_name("sdk-wrong").send().await);
    assert_eq!((err.status, err.code.as_str()), (400, "InvalidSignatureException"), "{err:?}");
    let identity_client = cognate_e2e::identity::Client::new(&bad);
    let err = expect_err(identity_client.list_identity_pools().max_results(5).send().await);
    assert_eq!((err.status, err.code.as_str()), (400, "InvalidSignatureException"), "{err:?}");
    assert_eq!(pool_count(&server).await, before, "no pool was created");
}

#[tokio::test]
async fn unknown_access_key_is_rejected() {
    let server = Server::sqlite().await;
    let before = pool_count(&server).await;
    let resp = server
        .raw()
        .call(&idp("CreateUserPool"), &json!({"PoolName": "unknown-key"}).to_string(), Signing::unknown_key())
        .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let code = resp.error_type();
    assert!(
        code == "UnrecognizedClientException" || code == "InvalidSignatureException",
        "unexpected {code}: {}",
        resp.body
    );
    assert_error_headers(&resp, &code);
    assert_eq!(pool_count(&server).await, before, "no pool was created");
}

#[tokio::test]
async fn expired_signature_is_rejected() {
    let server = Server::sqlite().await;
    let before = pool_count(&server).await;
    let raw = server.raw();
    let resp = raw.call(&idp("CreateUserPool"), &json!({"PoolName": "too-old"}).to_string(), Signing::aged(600)).await;
    let msg = resp.assert_error("InvalidSignatureException");
    assert!(msg.starts_with("Signature expired"), "message should start with 'Signature expired': {msg:?}");
    assert_eq!(pool_count(&server).await, before, "no pool was created");

    // Ten minutes in the future is no better.
    let resp = raw
        .call(
            &idp("CreateUserPool"),
            &json!({"PoolName": "too-new"}).to_string(),
            Signing::With {
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                time: SystemTime::now() + Duration::from_secs(600),
                region: REGION.into(),
            },
        )
        .await;
    resp.assert_error("InvalidSignatureException");
    assert_eq!(pool_count(&server).await, before, "no pool was created");

    // A minute of skew is fine.
    let resp = raw.call(&idp("ListUserPools"), &json!({"MaxResults": 5}).to_string(), Signing::aged(60)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

#[tokio::test]
async fn tampered_body_is_rejected() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let before = pool_count(&server).await;
    let target = idp("CreateUserPool");
    let mut headers = raw.base_headers(&target);
    let signed_body = json!({"PoolName": "signed"}).to_string();
    let sent_body = json!({"PoolName": "tampered"}).to_string();
    let sig = sigv4_headers(
        &format!("{}/", raw.base),
        &headers,
        signed_body.as_bytes(),
        ACCESS_KEY,
        SECRET_KEY,
        SystemTime::now(),
        REGION,
        "cognito-idp",
    );
    headers.extend(sig);
    let resp = raw.post(&headers, sent_body.into_bytes()).await;
    resp.assert_error("InvalidSignatureException");
    assert_eq!(pool_count(&server).await, before, "no pool was created");

    // Changing a signed header (the target) breaks the signature too.
    let mut headers = raw.base_headers(&idp("ListUserPools"));
    let body = json!({"MaxResults": 5}).to_string();
    let sig = sigv4_headers(
        &format!("{}/", raw.base),
        &headers,
        body.as_bytes(),
        ACCESS_KEY,
        SECRET_KEY,
        SystemTime::now(),
        REGION,
        "cognito-idp",
    );
    headers.extend(sig);
    for h in headers.iter_mut() {
        if h.0 == "x-amz-target" {
            h.1 = idp("ListUserPoolClients");
        }
    }
    raw.post(&headers, body.into_bytes()).await.assert_error("InvalidSignatureException");
}

#[tokio::test]
async fn unsigned_public_operations_need_no_signature() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    // SignUp and InitiateAuth are public: without a signature they reach the
    // operation, which finds no such client.
    let resp = raw
        .call(
            &idp("SignUp"),
            &json!({
                "ClientId": "26charsofnothing0000000000",
                "Username": "someone",
                "Password": "Passw0rd!"
            })
            .to_string(),
            Signing::None,
        )
        .await;
    resp.assert_error("ResourceNotFoundException");
    let resp = raw
        .call(
            &idp("InitiateAuth"),
            &json!({
                "ClientId": "26charsofnothing0000000000",
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": "someone", "PASSWORD": "Passw0rd!"}
            })
            .to_string(),
            Signing::None,
        )
        .await;
    // InitiateAuth arrives with the authentication issue; until then it must still get
    // past authentication and answer not-implemented.
    assert_eq!(resp.status, 400, "{}", resp.body);
    let code = resp.error_type();
    assert!(
        code == "ResourceNotFoundException" || code == "UnsupportedOperationException",
        "unexpected {code}: {}",
        resp.body
    );
}

#[tokio::test]
async fn unknown_target_is_unknown_operation() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let resp = raw.call(&idp("NoSuchOperation"), "{}", Signing::Valid).await;
    resp.assert_error("UnknownOperationException");
    assert_error_headers(&resp, "UnknownOperationException");
    // An operation of the other service under this prefix is unknown as well.
    raw.call(&identity("CreateUserPool"), "{}", Signing::Valid).await.assert_error("UnknownOperationException");
    raw.call("NoSuchService.DescribeUserPool", "{}", Signing::Valid).await.assert_error("UnknownOperationException");
}

#[tokio::test]
async fn malformed_json_is_a_serialization_error() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let before = pool_count(&server).await;
    let resp = raw.call(&idp("CreateUserPool"), "{\"PoolName\": ", Signing::Valid).await;
    resp.assert_error("SerializationException");
    assert_error_headers(&resp, "SerializationException");
    raw.call(&idp("DescribeUserPool"), "not json at all", Signing::Valid).await.assert_error("SerializationException");
    raw.call(&identity("ListIdentityPools"), "[1, 2, 3", Signing::Valid).await.assert_error("SerializationException");
    // A member of the wrong JSON type.
    let resp = raw.call(&idp("ListUserPools"), &json!({"MaxResults": "three"}).to_string(), Signing::Valid).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let code = resp.error_type();
    assert!(code == "SerializationException" || code == "InvalidParameterException", "{}", resp.body);
    assert_eq!(pool_count(&server).await, before, "no pool was created");
}

/// A model operation that the server does not implement (yet). If the server
/// comes to implement it, pick another unimplemented one.
const UNIMPLEMENTED_OP: &str = "AdminListUserAuthEvents";

#[tokio::test]
async fn unimplemented_operation_is_unsupported() {
    let server = Server::sqlite().await;
    let pool = new_pool(&server).await;
    let resp = server.raw().idp(UNIMPLEMENTED_OP, json!({"UserPoolId": pool, "Username": "nobody"})).await;
    let msg = resp.assert_error("UnsupportedOperationException");
    assert!(msg.contains(UNIMPLEMENTED_OP), "the message should name the operation: {msg:?}");
    assert_error_headers(&resp, "UnsupportedOperationException");
    // The SDK parses it as a client error (no retry, no 500).
    let err =
        expect_err(server.idp().admin_list_user_auth_events().user_pool_id(&pool).username("nobody").send().await);
    assert_eq!((err.status, err.code.as_str()), (400, "UnsupportedOperationException"), "{err:?}");
}

#[tokio::test]
async fn validation_errors_name_the_member() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    // A missing required member.
    let resp = raw.idp("DescribeUserPool", json!({})).await;
    let msg = resp.assert_error("InvalidParameterException");
    assert!(msg.to_lowercase().contains("userpoolid"), "the message should name UserPoolId: {msg:?}");
    // A member that breaks its pattern.
    let resp = raw.idp("DescribeUserPool", json!({"UserPoolId": "bad"})).await;
    let msg = resp.assert_error("InvalidParameterException");
    assert!(msg.to_lowercase().contains("userpoolid"), "the message should name UserPoolId: {msg:?}");
    // A member over its length limit.
    let resp = raw.idp("CreateUserPool", json!({"PoolName": "x".repeat(129)})).await;
    resp.assert_error("InvalidParameterException");
    // An enum value outside the model's set.
    let resp = raw.idp("CreateUserPool", json!({"PoolName": "enum", "MfaConfiguration": "SOMETIMES"})).await;
    resp.assert_error("InvalidParameterException");
    assert_eq!(pool_count(&server).await, 0, "no pool was created");
}

#[tokio::test]
async fn signature_for_another_service_is_rejected() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let body = json!({"MaxResults": 5}).to_string();
    // A cognito-idp request signed (correctly) for cognito-identity.
    let mut headers = raw.base_headers(&idp("ListUserPools"));
    let sig = sigv4_headers(
        &format!("{}/", raw.base),
        &headers,
        body.as_bytes(),
        ACCESS_KEY,
        SECRET_KEY,
        SystemTime::now(),
        REGION,
        "cognito-identity",
    );
    headers.extend(sig);
    raw.post(&headers, body.into_bytes()).await.assert_error("InvalidSignatureException");
}

#[tokio::test]
async fn any_region_is_served_and_names_its_namespace() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let signed_for = |region: &str| Signing::With {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        time: SystemTime::now(),
        region: region.into(),
    };
    let created =
        raw.call(&idp("CreateUserPool"), &json!({"PoolName": "west"}).to_string(), signed_for("eu-west-1")).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let pool = created.json()["UserPool"].clone();
    let id = pool["Id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("eu-west-1_"), "{id}");
    assert!(pool["Arn"].as_str().expect("arn").starts_with("arn:aws:cognito-idp:eu-west-1:"), "{pool}");
    let raw_ref = &raw;
    let list = |region: &str| {
        let signing = signed_for(region);
        let raw = raw_ref;
        async move {
            let resp = raw.call(&idp("ListUserPools"), &json!({"MaxResults": 60}).to_string(), signing).await;
            assert_eq!(resp.status, 200, "{}", resp.body);
            resp.json()["UserPools"].as_array().expect("pools").iter().map(|p| p["Id"].to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(list("eu-west-1").await.len(), 1);
    assert!(list("us-east-1").await.is_empty(), "another region's listing shows nothing");
    // A signed request finds pools of its own region only, as in AWS.
    let describe = json!({"UserPoolId": id}).to_string();
    raw.call(&idp("DescribeUserPool"), &describe, signed_for("us-east-1"))
        .await
        .assert_error("ResourceNotFoundException");
    let found = raw.call(&idp("DescribeUserPool"), &describe, signed_for("eu-west-1")).await;
    assert_eq!(found.status, 200, "{}", found.body);
    // What is not a region name is refused as AWS refuses it.
    let body = json!({"MaxResults": 5}).to_string();
    raw.call(&idp("ListUserPools"), &body, signed_for("moon-base")).await.assert_error("InvalidSignatureException");
}

#[tokio::test]
async fn null_members_are_absent_and_unknown_members_ignored() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let resp = raw
        .idp(
            "CreateUserPool",
            json!({
                "PoolName": "nulls",
                "MfaConfiguration": null,
                "Policies": null,
                "SomeFutureMember": {"x": 1}
            }),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let pool = &resp.json()["UserPool"];
    assert_eq!(pool["MfaConfiguration"], json!("OFF"));
    assert_eq!(
        pool["Policies"]["PasswordPolicy"]["MinimumLength"],
        json!(8),
        "a null Policies gets the default policy"
    );
    // A null required member is a missing one.
    raw.idp("DescribeUserPool", json!({"UserPoolId": null})).await.assert_error("InvalidParameterException");
}

#[tokio::test]
async fn cors_preflight_and_exposed_headers() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let resp = raw
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/", raw.base))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-amz-target,x-amz-user-agent")
        .send()
        .await
        .expect("OPTIONS");
    assert!(resp.status().is_success(), "pre-flight answered {}", resp.status());
    let allow_origin =
        resp.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap_or_default().to_string());
    assert!(
        allow_origin.as_deref() == Some("*") || allow_origin.as_deref() == Some("http://localhost:3000"),
        "{allow_origin:?}"
    );
    let allow_headers = resp
        .headers()
        .get("access-control-allow-headers")
        .map(|v| v.to_str().unwrap_or_default().to_lowercase())
        .unwrap_or_default();
    assert!(allow_headers == "*" || allow_headers.contains("x-amz-target"), "allowed headers: {allow_headers:?}");
    // Public calls from a browser see the request id and error type.
    let resp = raw
        .call(
            &idp("SignUp"),
            &json!({"ClientId": "26charsofnothing0000000000", "Username": "u", "Password": "Passw0rd!"}).to_string(),
            Signing::None,
        )
        .await;
    assert!(resp.header("access-control-allow-origin").is_some());
    let exposed = resp.header("access-control-expose-headers").unwrap_or_default().to_lowercase();
    for h in ["x-amzn-requestid", "x-amzn-errortype"] {
        assert!(exposed.contains(h), "{h} is not exposed: {exposed:?}");
    }
}

#[tokio::test]
async fn unsigned_get_id_reaches_the_operation() {
    let server = Server::sqlite().await;
    let resp = server
        .raw()
        .call(
            &identity("GetId"),
            &json!({"IdentityPoolId": format!("{REGION}:11111111-2222-4333-8444-555555555555")}).to_string(),
            Signing::None,
        )
        .await;
    // A public operation gets past authentication (no MissingAuthenticationToken) to the
    // operation, which does not find the pool.
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(resp.error_type(), "ResourceNotFoundException", "{}", resp.body);
}

#[tokio::test]
async fn malformed_authorization_is_rejected() {
    let server = Server::sqlite().await;
    let raw = server.raw();
    let before = pool_count(&server).await;
    let body = json!({"PoolName": "malformed-auth"}).to_string();
    for auth in [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/cognito-idp/aws4_request",
        "Bearer abc.def.ghi",
    ] {
        let mut headers = raw.base_headers(&idp("CreateUserPool"));
        headers.push(("authorization".into(), auth.into()));
        headers.push(("x-amz-date".into(), "20200101T000000Z".into()));
        let resp = raw.post(&headers, body.clone().into_bytes()).await;
        assert_eq!(resp.status, 400, "{auth}: {}", resp.body);
        let code = resp.error_type();
        assert!(
            [
                "IncompleteSignatureException",
                "InvalidSignatureException",
                "MissingAuthenticationTokenException",
                "UnrecognizedClientException",
            ]
            .contains(&code.as_str()),
            "{auth}: {}",
            resp.body
        );
    }
    // A valid signature but no date header to go with it.
    let mut headers = raw.base_headers(&idp("CreateUserPool"));
    let sig = sigv4_headers(
        &format!("{}/", raw.base),
        &headers,
        body.as_bytes(),
        ACCESS_KEY,
        SECRET_KEY,
        SystemTime::now(),
        REGION,
        "cognito-idp",
    );
    headers.extend(sig.into_iter().filter(|(k, _)| k != "x-amz-date"));
    let resp = raw.post(&headers, body.into_bytes()).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(pool_count(&server).await, before, "no pool was created");
}
