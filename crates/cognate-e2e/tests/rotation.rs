//! Refresh-token rotation: GetTokensFromRefreshToken returns a new refresh token and spends
//! the old one; a spent token offered again revokes its whole family; REFRESH_TOKEN_AUTH is
//! refused for a rotating client.

use cognate_e2e::idp::types::{AuthFlowType, ExplicitAuthFlowsType, FeatureType, RefreshTokenRotationType};
use cognate_e2e::{both_stores, expect_code, ok, unique_name, Server};

both_stores!(rotation_spends_each_refresh_token_once);

async fn rotation_spends_each_refresh_token_once(server: &Server) {
    let idp = server.idp();
    let pool = ok(idp.create_user_pool().pool_name(unique_name("rot")).send().await).user_pool.unwrap().id.unwrap();
    let client = ok(idp
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("rotating")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .refresh_token_rotation(
            RefreshTokenRotationType::builder().feature(FeatureType::Enabled).build().expect("rotation"),
        )
        .send()
        .await)
    .user_pool_client
    .unwrap()
    .client_id
    .unwrap();
    ok(idp.admin_create_user().user_pool_id(&pool).username("rita").message_action("SUPPRESS".into()).send().await);
    ok(idp
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username("rita")
        .password("Passw0rd!!")
        .permanent(true)
        .send()
        .await);
    let first = ok(idp
        .admin_initiate_auth()
        .user_pool_id(&pool)
        .client_id(&client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "rita")
        .auth_parameters("PASSWORD", "Passw0rd!!")
        .send()
        .await)
    .authentication_result
    .unwrap()
    .refresh_token
    .unwrap();

    let anonymous = server.idp_anonymous();
    expect_code(
        anonymous
            .initiate_auth()
            .client_id(&client)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", &first)
            .send()
            .await,
        "NotAuthorizedException",
    );

    let rotated = ok(anonymous.get_tokens_from_refresh_token().client_id(&client).refresh_token(&first).send().await)
        .authentication_result
        .unwrap();
    let second = rotated.refresh_token.expect("a new refresh token");
    assert_ne!(second, first);
    assert!(rotated.access_token.is_some() && rotated.id_token.is_some());

    expect_code(
        anonymous.get_tokens_from_refresh_token().client_id(&client).refresh_token(&first).send().await,
        "RefreshTokenReuseException",
    );
    // A reuse means two parties hold the family: the whole family is revoked, the successor
    // (which a thief may hold) included, and the access tokens issued from it.
    let msg = expect_code(
        anonymous.get_tokens_from_refresh_token().client_id(&client).refresh_token(&second).send().await,
        "NotAuthorizedException",
    );
    assert_eq!(msg, "Refresh Token has been revoked");
    let access = rotated.access_token.expect("an access token");
    let msg = expect_code(anonymous.get_user().access_token(access).send().await, "NotAuthorizedException");
    assert_eq!(msg, "Access Token has been revoked");
}
