//! Managed login branding styles (Create/Describe/Update/DeleteManagedLoginBranding and
//! DescribeManagedLoginBrandingByClient): how managed login's pages look for one app client,
//! as a `Settings` JSON document and image files (`Assets`, base64 on the wire). An app client
//! has one style at most, a pool [`MAX_PER_POOL`]. A style can hold 40 images of up to 1 MB,
//! so styles live in a store table of their own, not in the pool's document, which most
//! operations read.
//!
//! Update keeps what it is not given, as Cognito does, so that a style larger than one
//! request can be sent in several: Settings given replace the stored Settings, and each image
//! given replaces the stored image of its category and color mode, the others staying.
//! `UseCognitoProvidedValues: true` resets the style to Cognito's defaults.
//!
//! Cognate keeps a style as given and has no copy of Cognito's default style:
//! `ReturnMergedResources: true` returns the stored style, not merged with defaults, and a
//! style on the defaults has no Settings or Assets to show. Cognate's hosted pages do not
//! render these styles (they use Get/SetUICustomization's CSS and logo).

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cognate_api::idp::{
    AssetCategoryType, AssetExtensionType, AssetType, ColorSchemeModeType, ManagedLoginBrandingType,
};
use cognate_api::ErrorCode;
use cognate_store::{Entity, ManagedLoginBrandingRecord, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::{timestamp, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::records::{decode_doc, encode_doc, load_pool, pool_not_found, written, Attempts};

/// Most branding styles a user pool may have (Cognito's quota).
pub const MAX_PER_POOL: u64 = 20;
/// Largest image file, decoded (the model's `AssetBytesType`).
const MAX_ASSET_BYTES: usize = 1_000_000;
/// Most images in a style (the model's `AssetListType`, which responses use too).
const MAX_ASSETS: usize = 40;

/// What the store keeps of a style besides its ids and times.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StyleDoc {
    #[serde(default)]
    use_cognito_provided_values: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settings: Option<Value>,
    /// At most one image per (category, color mode); bytes base64 as on the wire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    assets: Vec<AssetType>,
}

/// What Create and Update are given for the style itself.
#[derive(Clone, Debug, Default)]
pub struct StyleChange {
    pub use_cognito_provided_values: Option<bool>,
    pub settings: Option<Value>,
    pub assets: Option<Vec<AssetType>>,
}

impl StyleChange {
    /// Refuses what Cognito refuses before anything is read or written.
    fn check(&self) -> ApiResult<()> {
        if self.use_cognito_provided_values == Some(true) && (self.settings.is_some() || self.assets.is_some()) {
            return Err(ApiError::invalid_parameter(
                "Settings and Assets must be omitted when UseCognitoProvidedValues is true.",
            ));
        }
        if self.settings.as_ref().is_some_and(|settings| !settings.is_object()) {
            return Err(ApiError::invalid_parameter("Settings must be a JSON object."));
        }
        let mut slots = BTreeSet::new();
        for asset in self.assets.iter().flatten() {
            check_asset(asset)?;
            if !slots.insert(slot(asset)) {
                return Err(ApiError::invalid_parameter(format!(
                    "Assets has more than one {} image for color mode {}.",
                    asset.category, asset.color_mode
                )));
            }
        }
        Ok(())
    }

    /// Whether the change leaves the defaults for a style of its own.
    fn customizes(&self) -> bool {
        self.use_cognito_provided_values == Some(false) || self.settings.is_some() || self.assets.is_some()
    }

    /// The style after this change: defaults, or `stored` with what is given replacing what
    /// it names (Settings whole, each image by its category and color mode).
    fn apply(&self, stored: &StyleDoc) -> ApiResult<StyleDoc> {
        if self.use_cognito_provided_values == Some(true) {
            return Ok(StyleDoc { use_cognito_provided_values: true, ..StyleDoc::default() });
        }
        let mut style = stored.clone();
        if self.customizes() {
            style.use_cognito_provided_values = false;
        }
        if let Some(settings) = &self.settings {
            style.settings = Some(settings.clone());
        }
        for asset in self.assets.iter().flatten() {
            match style.assets.iter_mut().find(|stored| slot(stored) == slot(asset)) {
                Some(stored) => *stored = asset.clone(),
                None => style.assets.push(asset.clone()),
            }
        }
        if style.assets.len() > MAX_ASSETS {
            return Err(ApiError::invalid_parameter(format!(
                "A branding style can have at most {MAX_ASSETS} assets; this update would leave it {}.",
                style.assets.len()
            )));
        }
        Ok(style)
    }
}

/// Where an image goes: one per category and color mode.
fn slot(asset: &AssetType) -> (&str, &str) {
    (asset.category.as_str(), asset.color_mode.as_str())
}

fn check_asset(asset: &AssetType) -> ApiResult<()> {
    // The validator has checked the enums against the model already; a value decoded as
    // Unknown would still not be one of Cognito's.
    let unknown = matches!(asset.category, AssetCategoryType::Unknown(_))
        || matches!(asset.color_mode, ColorSchemeModeType::Unknown(_))
        || matches!(asset.extension, AssetExtensionType::Unknown(_));
    if unknown {
        return Err(ApiError::invalid_parameter("An asset's Category, ColorMode or Extension is not Cognito's."));
    }
    let named = format!("The {} asset for color mode {}", asset.category, asset.color_mode);
    let Some(encoded) = &asset.bytes else {
        return Err(ApiError::invalid_parameter(format!("{named} has no Bytes.")));
    };
    let bytes = STANDARD.decode(encoded).map_err(|_| ApiError::invalid_parameter(format!("{named} is not base64.")))?;
    if bytes.len() > MAX_ASSET_BYTES {
        return Err(ApiError::invalid_parameter(format!("{named} is larger than {MAX_ASSET_BYTES} bytes.")));
    }
    Ok(())
}

fn branding_not_found(branding_id: &str) -> ApiError {
    ApiError::not_found(format!("Managed login branding {branding_id} does not exist."))
}

fn client_not_found(client_id: &str) -> ApiError {
    ApiError::not_found(format!("User pool client {client_id} does not exist."))
}

fn view(record: &ManagedLoginBrandingRecord, style: StyleDoc) -> ManagedLoginBrandingType {
    ManagedLoginBrandingType {
        assets: Some(style.assets),
        creation_date: Some(timestamp(record.created_ms)),
        last_modified_date: Some(timestamp(record.modified_ms)),
        managed_login_branding_id: Some(record.branding_id.clone()),
        settings: style.settings,
        use_cognito_provided_values: Some(style.use_cognito_provided_values),
        user_pool_id: Some(record.pool_id.clone()),
    }
}

fn view_of(record: &ManagedLoginBrandingRecord) -> ApiResult<ManagedLoginBrandingType> {
    Ok(view(record, decode_doc(&record.doc)?))
}

/// CreateManagedLoginBranding.
pub async fn create(
    ctx: &Ctx,
    pool_id: &str,
    client_id: &str,
    change: StyleChange,
) -> ApiResult<ManagedLoginBrandingType> {
    change.check()?;
    load_pool(ctx, pool_id).await?;
    let style = change.apply(&StyleDoc::default())?;
    let now = ctx.now_ms();
    let record = ManagedLoginBrandingRecord {
        pool_id: pool_id.to_owned(),
        branding_id: cognate_crypto::ids::uuid_v4(),
        client_id: client_id.to_owned(),
        created_ms: now,
        modified_ms: now,
        version: 1,
        doc: encode_doc(&style)?,
    };
    let stored = record.clone();
    let inserted = ctx.store(move |s| Ok(s.insert_managed_login_branding(&stored, MAX_PER_POOL))).await?;
    match inserted {
        Ok(()) => Ok(view(&record, style)),
        Err(StoreError::AlreadyExists(Entity::ManagedLoginBranding)) => Err(ApiError::new(
            ErrorCode::ManagedLoginBrandingExistsException,
            format!("App client {client_id} already has a managed login branding style."),
        )),
        Err(StoreError::NotFound(Entity::AppClient)) => Err(client_not_found(client_id)),
        Err(StoreError::NotFound(_)) => Err(pool_not_found(pool_id)),
        Err(StoreError::LimitExceeded) => Err(ApiError::limit_exceeded(format!(
            "A user pool can have at most {MAX_PER_POOL} managed login branding styles."
        ))),
        Err(other) => Err(other.into()),
    }
}

/// DescribeManagedLoginBranding. `ReturnMergedResources` changes nothing: see the module's
/// documentation.
pub async fn describe(ctx: &Ctx, pool_id: &str, branding_id: &str) -> ApiResult<ManagedLoginBrandingType> {
    load_pool(ctx, pool_id).await?;
    let (pool, id) = (pool_id.to_owned(), branding_id.to_owned());
    let found = ctx.store(move |s| s.get_managed_login_branding(&pool, &id)).await?;
    view_of(&found.ok_or_else(|| branding_not_found(branding_id))?)
}

/// DescribeManagedLoginBrandingByClient.
pub async fn describe_by_client(ctx: &Ctx, pool_id: &str, client_id: &str) -> ApiResult<ManagedLoginBrandingType> {
    load_pool(ctx, pool_id).await?;
    let (pool, client) = (pool_id.to_owned(), client_id.to_owned());
    let (found, client_exists) = ctx
        .store(move |s| {
            let found = s.get_client_managed_login_branding(&pool, &client)?;
            // Only a miss needs to know which of the two is missing.
            let client_exists = found.is_some() || s.get_app_client(&pool, &client)?.is_some();
            Ok((found, client_exists))
        })
        .await?;
    match found {
        Some(record) => view_of(&record),
        None if client_exists => {
            Err(ApiError::not_found(format!("App client {client_id} has no managed login branding style.")))
        }
        None => Err(client_not_found(client_id)),
    }
}

/// UpdateManagedLoginBranding: see the module's documentation for what it keeps.
pub async fn update(
    ctx: &Ctx,
    pool_id: &str,
    branding_id: &str,
    change: StyleChange,
) -> ApiResult<ManagedLoginBrandingType> {
    change.check()?;
    load_pool(ctx, pool_id).await?;
    let mut attempts = Attempts::new(ctx, "The managed login branding");
    loop {
        attempts.begin()?;
        let (pool, id) = (pool_id.to_owned(), branding_id.to_owned());
        let found = ctx.store(move |s| s.get_managed_login_branding(&pool, &id)).await?;
        let mut record = found.ok_or_else(|| branding_not_found(branding_id))?;
        let style = change.apply(&decode_doc(&record.doc)?)?;
        record.doc = encode_doc(&style)?;
        record.modified_ms = ctx.now_ms();
        record.version += 1;
        let stored = record.clone();
        let answer = ctx.store(move |s| Ok(s.update_managed_login_branding(&stored))).await?;
        if let Some(record) = written(answer, record, || branding_not_found(branding_id))? {
            return Ok(view(&record, style));
        }
    }
}

/// DeleteManagedLoginBranding.
pub async fn delete(ctx: &Ctx, pool_id: &str, branding_id: &str) -> ApiResult<()> {
    load_pool(ctx, pool_id).await?;
    let (pool, id) = (pool_id.to_owned(), branding_id.to_owned());
    if ctx.store(move |s| s.delete_managed_login_branding(&pool, &id)).await? {
        Ok(())
    } else {
        Err(branding_not_found(branding_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn asset(category: &str, color_mode: &str, bytes: &[u8]) -> AssetType {
        AssetType {
            bytes: Some(STANDARD.encode(bytes)),
            category: category.into(),
            color_mode: color_mode.into(),
            extension: "PNG".into(),
            resource_id: None,
        }
    }

    #[test]
    fn defaults_exclude_settings_and_assets() {
        let defaults = StyleChange { use_cognito_provided_values: Some(true), ..StyleChange::default() };
        assert!(defaults.check().is_ok());
        let with_settings = StyleChange { settings: Some(json!({})), ..defaults.clone() };
        assert!(with_settings.check().is_err());
        let with_assets = StyleChange { assets: Some(Vec::new()), ..defaults };
        assert!(with_assets.check().is_err());
    }

    #[test]
    fn assets_are_checked() {
        let one = |asset: AssetType| StyleChange { assets: Some(vec![asset]), ..StyleChange::default() }.check();
        assert!(one(asset("FORM_LOGO", "LIGHT", b"png")).is_ok());
        assert!(one(asset("FORM_LOGO", "LIGHT", &vec![0; MAX_ASSET_BYTES])).is_ok());
        assert!(one(asset("FORM_LOGO", "LIGHT", &vec![0; MAX_ASSET_BYTES + 1])).is_err());
        assert!(one(AssetType { bytes: Some("not base64!".into()), ..asset("FORM_LOGO", "LIGHT", b"") }).is_err());
        assert!(one(AssetType { bytes: None, ..asset("FORM_LOGO", "LIGHT", b"") }).is_err());
        assert!(one(asset("NOT_A_CATEGORY", "LIGHT", b"png")).is_err());
        let twice = vec![asset("FORM_LOGO", "DARK", b"a"), asset("FORM_LOGO", "DARK", b"b")];
        assert!(StyleChange { assets: Some(twice), ..StyleChange::default() }.check().is_err());
        assert!(StyleChange { settings: Some(json!([1])), ..StyleChange::default() }.check().is_err());
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name() {
        let stored = StyleDoc {
            use_cognito_provided_values: false,
            settings: Some(json!({"categories": {"global": {"colorSchemeMode": "LIGHT"}}})),
            assets: vec![asset("FORM_LOGO", "LIGHT", b"old"), asset("FAVICON_ICO", "DYNAMIC", b"icon")],
        };
        let change = StyleChange {
            assets: Some(vec![asset("FORM_LOGO", "LIGHT", b"new"), asset("FORM_LOGO", "DARK", b"dark")]),
            ..StyleChange::default()
        };
        let updated = change.apply(&stored).expect("applies");
        assert_eq!(updated.settings, stored.settings, "Settings not given are kept");
        let bytes: Vec<_> = updated.assets.iter().map(|a| a.bytes.clone().unwrap_or_default()).collect();
        assert_eq!(bytes, [STANDARD.encode("new"), STANDARD.encode("icon"), STANDARD.encode("dark")]);

        let reset = StyleChange { use_cognito_provided_values: Some(true), ..StyleChange::default() };
        let defaults = reset.apply(&updated).expect("applies");
        assert!(defaults.use_cognito_provided_values && defaults.settings.is_none() && defaults.assets.is_empty());
        let customized = StyleChange { settings: Some(json!({})), ..StyleChange::default() }.apply(&defaults);
        assert!(!customized.expect("applies").use_cognito_provided_values);
    }

    #[test]
    fn an_update_may_not_grow_a_style_past_the_limit() {
        let categories = AssetCategoryType::VALUES;
        let modes = ColorSchemeModeType::VALUES;
        let every: Vec<AssetType> =
            categories.iter().flat_map(|category| modes.iter().map(move |mode| asset(category, mode, b"x"))).collect();
        assert!(every.len() > MAX_ASSETS);
        let stored = StyleDoc { assets: every[..MAX_ASSETS].to_vec(), ..StyleDoc::default() };
        let more = StyleChange { assets: Some(every[MAX_ASSETS..].to_vec()), ..StyleChange::default() };
        assert!(more.apply(&stored).is_err());
        let replacing = StyleChange { assets: Some(every[..2].to_vec()), ..StyleChange::default() };
        assert_eq!(replacing.apply(&stored).expect("applies").assets.len(), MAX_ASSETS);
    }
}
