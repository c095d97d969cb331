//! Managed login branding styles (Create/Describe/DescribeByClient/Update/
//! DeleteManagedLoginBranding) through the AWS SDK for Rust, on SQLite and PostgreSQL.

use std::collections::HashMap;

use aws_smithy_types::{Blob, Document, Number};
use cognate_e2e::idp::types::{
    AssetCategoryType, AssetExtensionType, AssetType, ColorSchemeModeType, ManagedLoginBrandingType,
};
use cognate_e2e::{base64, both_stores, epoch, expect_code, is_uuid, now_epoch, ok, random_bytes, App, Server};
use serde_json::{json, Value};

both_stores!(
    a_style_is_created_described_updated_and_deleted,
    an_update_keeps_what_it_does_not_name,
    a_client_has_one_style,
    unknown_pools_clients_and_styles_are_not_found,
    cognito_defaults_take_no_settings_or_assets,
    deleting_the_client_deletes_its_style,
);

async fn app(server: &Server) -> App {
    let pool = server.new_pool(|p| p).await;
    server.new_client(&pool, false, true).await
}

/// JSON as the SDK's document type (Settings).
fn document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::Number(Number::PosInt(u)),
            (None, Some(i)) => Document::Number(Number::NegInt(i)),
            _ => Document::Number(Number::Float(n.as_f64().expect("a number"))),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(document).collect()),
        Value::Object(map) => Document::Object(map.iter().map(|(k, v)| (k.clone(), document(v))).collect()),
    }
}

fn settings() -> Value {
    json!({
        "categories": {"global": {"colorSchemeMode": "DARK", "spacingDensity": "COMPACT"}},
        "components": {"primaryButton": {"lightMode": {"defaults": {"backgroundColor": "0972d3ff"}}}},
        "order": [1, -2, 3.5, true, null]
    })
}

fn asset(category: AssetCategoryType, color_mode: ColorSchemeModeType, bytes: &[u8]) -> AssetType {
    AssetType::builder()
        .category(category)
        .color_mode(color_mode)
        .extension(AssetExtensionType::Png)
        .bytes(Blob::new(bytes))
        .build()
        .expect("asset")
}

/// The assets' bytes by category and color mode.
fn images(style: &ManagedLoginBrandingType) -> HashMap<(String, String), Vec<u8>> {
    style
        .assets()
        .iter()
        .map(|a| {
            let key = (a.category().as_str().to_string(), a.color_mode().as_str().to_string());
            (key, a.bytes().map(|b| b.as_ref().to_vec()).unwrap_or_default())
        })
        .collect()
}

fn key(category: &str, color_mode: &str) -> (String, String) {
    (category.to_string(), color_mode.to_string())
}

async fn describe(server: &Server, pool: &str, id: &str) -> ManagedLoginBrandingType {
    let out = ok(server
        .idp()
        .describe_managed_login_branding()
        .user_pool_id(pool)
        .managed_login_branding_id(id)
        .send()
        .await);
    out.managed_login_branding.expect("ManagedLoginBranding")
}

/// DescribeManagedLoginBranding, which must fail with `code`.
async fn describe_fails(server: &Server, pool: &str, id: &str, code: &str) {
    let described = server.idp().describe_managed_login_branding().user_pool_id(pool).managed_login_branding_id(id);
    expect_code(described.send().await, code);
}

async fn describe_by_client(server: &Server, app: &App) -> ManagedLoginBrandingType {
    let out = ok(server
        .idp()
        .describe_managed_login_branding_by_client()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .return_merged_resources(true)
        .send()
        .await);
    out.managed_login_branding.expect("ManagedLoginBranding")
}

async fn create_with_defaults(server: &Server, app: &App) -> String {
    let out = ok(server
        .idp()
        .create_managed_login_branding()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .use_cognito_provided_values(true)
        .send()
        .await);
    out.managed_login_branding.and_then(|b| b.managed_login_branding_id).expect("ManagedLoginBrandingId")
}

async fn a_style_is_created_described_updated_and_deleted(server: &Server) {
    let app = app(server).await;
    // An image of 600 KB: the blob makes the round trip as base64 in JSON.
    let logo = random_bytes(600_000);
    let created = ok(server
        .idp()
        .create_managed_login_branding()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .settings(document(&settings()))
        .assets(asset(AssetCategoryType::FormLogo, ColorSchemeModeType::Light, &logo))
        .send()
        .await)
    .managed_login_branding
    .expect("ManagedLoginBranding");
    let id = created.managed_login_branding_id().expect("ManagedLoginBrandingId").to_string();
    assert!(is_uuid(&id), "{id}");
    assert_eq!(created.user_pool_id(), Some(app.pool.as_str()));
    assert!(!created.use_cognito_provided_values());
    assert_eq!(created.settings(), Some(&document(&settings())), "Settings come back as given");
    assert_eq!(images(&created), HashMap::from([(key("FORM_LOGO", "LIGHT"), logo.clone())]));
    let created_at = epoch(created.creation_date().expect("CreationDate"));
    assert!((created_at - now_epoch()).abs() < 300.0, "CreationDate {created_at} is not now");

    // By id and by client, merged or not (Cognate has no defaults to merge), the same style.
    assert_eq!(describe(server, &app.pool, &id).await, created);
    assert_eq!(describe_by_client(server, &app).await, created);
    let raw = server
        .raw()
        .idp("DescribeManagedLoginBranding", json!({"UserPoolId": app.pool, "ManagedLoginBrandingId": id}))
        .await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    let wire = raw.json();
    assert_eq!(wire["ManagedLoginBranding"]["Assets"][0]["Bytes"], json!(base64(&logo)), "Bytes are base64");
    assert_eq!(wire["ManagedLoginBranding"]["Settings"], settings(), "Settings are JSON");

    let new_settings = json!({"categories": {"global": {"colorSchemeMode": "LIGHT"}}});
    let updated = ok(server
        .idp()
        .update_managed_login_branding()
        .user_pool_id(&app.pool)
        .managed_login_branding_id(&id)
        .settings(document(&new_settings))
        .send()
        .await)
    .managed_login_branding
    .expect("ManagedLoginBranding");
    assert_eq!(updated.settings(), Some(&document(&new_settings)), "given Settings replace the stored ones");
    assert_eq!(updated.creation_date(), created.creation_date());
    assert!(updated.last_modified_date() >= created.last_modified_date());
    assert_eq!(describe(server, &app.pool, &id).await, updated);

    ok(server
        .idp()
        .delete_managed_login_branding()
        .user_pool_id(&app.pool)
        .managed_login_branding_id(&id)
        .send()
        .await);
    describe_fails(server, &app.pool, &id, "ResourceNotFoundException").await;
    expect_code(
        server
            .idp()
            .delete_managed_login_branding()
            .user_pool_id(&app.pool)
            .managed_login_branding_id(&id)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    // The client may be styled anew.
    create_with_defaults(server, &app).await;
}

async fn an_update_keeps_what_it_does_not_name(server: &Server) {
    let app = app(server).await;
    let (light, dark, icon) = (random_bytes(1000), random_bytes(2000), random_bytes(300));
    let created = ok(server
        .idp()
        .create_managed_login_branding()
        .user_pool_id(&app.pool)
        .client_id(&app.client)
        .settings(document(&settings()))
        .assets(asset(AssetCategoryType::FormLogo, ColorSchemeModeType::Light, &light))
        .assets(asset(AssetCategoryType::FaviconIco, ColorSchemeModeType::Dynamic, &icon))
        .send()
        .await)
    .managed_login_branding
    .expect("ManagedLoginBranding");
    let id = created.managed_login_branding_id().expect("id").to_string();

    // One image replaced, one added, the third and the Settings kept.
    let new_light = random_bytes(1500);
    let updated = ok(server
        .idp()
        .update_managed_login_branding()
        .user_pool_id(&app.pool)
        .managed_login_branding_id(&id)
        .assets(asset(AssetCategoryType::FormLogo, ColorSchemeModeType::Light, &new_light))
        .assets(asset(AssetCategoryType::FormLogo, ColorSchemeModeType::Dark, &dark))
        .send()
        .await)
    .managed_login_branding
    .expect("ManagedLoginBranding");
    let expected = HashMap::from([
        (key("FORM_LOGO", "LIGHT"), new_light),
        (key("FORM_LOGO", "DARK"), dark),
        (key("FAVICON_ICO", "DYNAMIC"), icon),
    ]);
    assert_eq!(images(&updated), expected);
    assert_eq!(updated.settings(), Some(&document(&settings())));
    assert_eq!(images(&describe_by_client(server, &app).await), expected);

    // Back to Cognito's defaults: nothing of the style is left.
    let reset = ok(server
        .idp()
        .update_managed_login_branding()
        .user_pool_id(&app.pool)
        .managed_login_branding_id(&id)
        .use_cognito_provided_values(true)
        .send()
        .await)
    .managed_login_branding
    .expect("ManagedLoginBranding");
    assert!(reset.use_cognito_provided_values());
    assert_eq!((reset.settings(), reset.assets().len()), (None, 0));
    assert_eq!(describe(server, &app.pool, &id).await, reset);
}

async fn a_client_has_one_style(server: &Server) {
    let app = app(server).await;
    let id = create_with_defaults(server, &app).await;
    expect_code(
        server
            .idp()
            .create_managed_login_branding()
            .user_pool_id(&app.pool)
            .client_id(&app.client)
            .settings(document(&settings()))
            .send()
            .await,
        "ManagedLoginBrandingExistsException",
    );
    let style = describe_by_client(server, &app).await;
    assert_eq!(style.managed_login_branding_id(), Some(id.as_str()));
    assert!(style.use_cognito_provided_values(), "the refused create changed nothing");
    // Another client of the pool has a style of its own.
    let other = server.new_client(&app.pool, false, true).await;
    let other_id = create_with_defaults(server, &other).await;
    assert_ne!(other_id, id);
}

async fn unknown_pools_clients_and_styles_are_not_found(server: &Server) {
    let app = app(server).await;
    let idp = server.idp();
    let nobody = "6b5c0d1e-2f3a-4b5c-8d7e-9f0a1b2c3d4e";
    let unknown_pool = "us-east-1_nosuchpool";
    expect_code(
        idp.create_managed_login_branding().user_pool_id(&app.pool).client_id("nosuchclient").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.create_managed_login_branding().user_pool_id(unknown_pool).client_id(&app.client).send().await,
        "ResourceNotFoundException",
    );
    describe_fails(server, &app.pool, nobody, "ResourceNotFoundException").await;
    expect_code(
        idp.describe_managed_login_branding_by_client().user_pool_id(&app.pool).client_id(&app.client).send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.describe_managed_login_branding_by_client().user_pool_id(&app.pool).client_id("nosuchclient").send().await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.update_managed_login_branding()
            .user_pool_id(&app.pool)
            .managed_login_branding_id(nobody)
            .use_cognito_provided_values(true)
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_code(
        idp.delete_managed_login_branding().user_pool_id(&app.pool).managed_login_branding_id(nobody).send().await,
        "ResourceNotFoundException",
    );
    // A style of one pool is not found through another.
    let id = create_with_defaults(server, &app).await;
    let other_pool = server.new_pool(|p| p).await;
    describe_fails(server, &other_pool, &id, "ResourceNotFoundException").await;
    describe_fails(server, unknown_pool, &id, "ResourceNotFoundException").await;
    // An id that is not a UUID is refused before any look-up.
    describe_fails(server, &app.pool, "style-1", "InvalidParameterException").await;
}

async fn cognito_defaults_take_no_settings_or_assets(server: &Server) {
    let app = app(server).await;
    let idp = server.idp();
    expect_code(
        idp.create_managed_login_branding()
            .user_pool_id(&app.pool)
            .client_id(&app.client)
            .use_cognito_provided_values(true)
            .settings(document(&settings()))
            .send()
            .await,
        "InvalidParameterException",
    );
    expect_code(
        idp.describe_managed_login_branding_by_client().user_pool_id(&app.pool).client_id(&app.client).send().await,
        "ResourceNotFoundException",
    );
    // Two images for one category and color mode are refused too, and change nothing.
    let id = create_with_defaults(server, &app).await;
    expect_code(
        idp.update_managed_login_branding()
            .user_pool_id(&app.pool)
            .managed_login_branding_id(&id)
            .assets(asset(AssetCategoryType::PageBackground, ColorSchemeModeType::Dark, b"one"))
            .assets(asset(AssetCategoryType::PageBackground, ColorSchemeModeType::Dark, b"two"))
            .send()
            .await,
        "InvalidParameterException",
    );
    expect_code(
        idp.update_managed_login_branding()
            .user_pool_id(&app.pool)
            .managed_login_branding_id(&id)
            .use_cognito_provided_values(true)
            .assets(asset(AssetCategoryType::PageBackground, ColorSchemeModeType::Dark, b"one"))
            .send()
            .await,
        "InvalidParameterException",
    );
    let style = describe(server, &app.pool, &id).await;
    assert!(style.use_cognito_provided_values() && style.assets().is_empty(), "{style:?}");
}

/// (Deleting the pool deletes its clients and so their styles: the store's conformance suite
/// checks that cascade, which no API call can observe once the pool is gone.)
async fn deleting_the_client_deletes_its_style(server: &Server) {
    let app = app(server).await;
    let id = create_with_defaults(server, &app).await;
    let kept = server.new_client(&app.pool, false, true).await;
    let kept_id = create_with_defaults(server, &kept).await;
    ok(server.idp().delete_user_pool_client().user_pool_id(&app.pool).client_id(&app.client).send().await);
    describe_fails(server, &app.pool, &id, "ResourceNotFoundException").await;
    assert_eq!(describe(server, &kept.pool, &kept_id).await.managed_login_branding_id(), Some(kept_id.as_str()));
}
