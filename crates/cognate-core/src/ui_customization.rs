//! Get/SetUICustomization: a pool's (or one app client's) CSS and logo for the hosted pages.
//! As in Cognito, the CSS may only style the pages' customizable classes, and the logo is a
//! PNG or JPEG of at most 100 KB; a client's customization replaces the pool's (`ALL`). They
//! live in the pool's document.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cognate_api::idp::UICustomizationType;

use crate::context::{timestamp, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::records::{load_pool, modify_pool, PoolDoc, UiCustomization as Customization};

/// The selectors Cognito lets a customization style (the hosted pages use these classes).
pub const CLASSES: &[&str] = &[
    "background-customizable",
    "banner-customizable",
    "errorMessage-customizable",
    "idpButton-customizable",
    "idpButton-customizable:hover",
    "inputField-customizable",
    "inputField-customizable:focus",
    "label-customizable",
    "legalText-customizable",
    "logo-customizable",
    "submitButton-customizable",
    "submitButton-customizable:hover",
    "textDescription-customizable",
];
/// The key of the pool-wide customization.
pub const ALL: &str = "ALL";
const MAX_IMAGE_BYTES: usize = 100 * 1024;

/// Every rule's selectors must be customizable classes.
fn check_css(css: &str) -> ApiResult<()> {
    for rule in css.split('}').map(str::trim).filter(|r| !r.is_empty()) {
        let Some((selectors, _)) = rule.split_once('{') else {
            return Err(ApiError::invalid_parameter("Invalid CSS: a rule has no declaration block."));
        };
        for selector in selectors.split(',').map(str::trim) {
            let class = selector.strip_prefix('.').unwrap_or(selector);
            if !CLASSES.contains(&class) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid CSS: {selector} is not a customizable class (the classes are .{}).",
                    CLASSES.join(", .")
                )));
            }
        }
    }
    Ok(())
}

fn media_type(image: &[u8]) -> Option<&'static str> {
    if image.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if image.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else {
        None
    }
}

fn view(ctx: &Ctx, pool_id: &str, key: &str, found: Option<&Customization>) -> UICustomizationType {
    UICustomizationType {
        css: found.and_then(|c| c.css.clone()),
        css_version: found.map(|c| c.modified_ms.to_string()),
        client_id: Some(key.to_owned().into()),
        creation_date: found.map(|c| timestamp(c.created_ms)),
        image_url: found
            .and_then(|c| c.image.as_ref())
            .map(|_| format!("{}/_cognate/ui/{pool_id}/{key}/logo", ctx.settings().public_url)),
        last_modified_date: found.map(|c| timestamp(c.modified_ms)),
        user_pool_id: Some(pool_id.to_owned()),
    }
}

/// The customization the pages of `client_id` use: its own, else the pool's.
pub fn effective<'a>(doc: &'a PoolDoc, client_id: &str) -> Option<(&'a str, &'a Customization)> {
    doc.ui_customizations
        .get_key_value(client_id)
        .or_else(|| doc.ui_customizations.get_key_value(ALL))
        .map(|(key, c)| (key.as_str(), c))
}

/// SetUICustomization.
pub async fn set(
    ctx: &Ctx,
    pool_id: &str,
    client_id: Option<&str>,
    css: Option<String>,
    image: Option<&str>,
) -> ApiResult<UICustomizationType> {
    if let Some(css) = &css {
        check_css(css)?;
    }
    let image = match image {
        Some(encoded) => {
            let bytes =
                STANDARD.decode(encoded).map_err(|_| ApiError::invalid_parameter("ImageFile is not base64."))?;
            if bytes.len() > MAX_IMAGE_BYTES {
                return Err(ApiError::invalid_parameter("The image file is larger than 100 KB."));
            }
            let media =
                media_type(&bytes).ok_or_else(|| ApiError::invalid_parameter("The image must be PNG or JPEG."))?;
            Some((media.to_owned(), encoded.to_owned()))
        }
        None => None,
    };
    let key = client_id.unwrap_or(ALL).to_owned();
    if key != ALL {
        let (p, c) = (pool_id.to_owned(), key.clone());
        if ctx.store(move |s| s.get_app_client(&p, &c)).await?.is_none() {
            load_pool(ctx, pool_id).await?;
            return Err(ApiError::not_found(format!("User pool client {key} does not exist.")));
        }
    }
    let now = ctx.now_ms();
    let doc = modify_pool(ctx, pool_id, |doc| {
        let created_ms = doc.ui_customizations.get(&key).map_or(now, |c| c.created_ms);
        doc.ui_customizations.insert(
            key.clone(),
            Customization { css: css.clone(), image: image.clone(), created_ms, modified_ms: now },
        );
        Ok(())
    })
    .await?;
    Ok(view(ctx, pool_id, &key, doc.ui_customizations.get(&key)))
}

/// GetUICustomization: the client's, else the pool's, else none (an empty one).
pub async fn get(ctx: &Ctx, pool_id: &str, client_id: Option<&str>) -> ApiResult<UICustomizationType> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    let found = match client_id {
        Some(client) => effective(&doc, client),
        None => doc.ui_customizations.get_key_value(ALL).map(|(k, c)| (k.as_str(), c)),
    };
    let key = found.map_or_else(|| client_id.unwrap_or(ALL).to_owned(), |(k, _)| k.to_owned());
    Ok(view(ctx, pool_id, &key, found.map(|(_, c)| c)))
}

/// The logo of a customization, for its ImageUrl: (media type, bytes).
pub async fn logo(ctx: &Ctx, pool_id: &str, key: &str) -> ApiResult<Option<(String, Vec<u8>)>> {
    let (_, doc) = load_pool(ctx, pool_id).await?;
    Ok(doc
        .ui_customizations
        .get(key)
        .and_then(|c| c.image.clone())
        .and_then(|(media, encoded)| STANDARD.decode(encoded).ok().map(|bytes| (media, bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_customizable_classes_may_be_styled() {
        assert!(check_css(".submitButton-customizable { background: #036; } .label-customizable{color:red}").is_ok());
        assert!(check_css(".banner-customizable, .logo-customizable:hover {}").is_err());
        assert!(check_css("body { display: none }").is_err());
        assert!(check_css(".inputField-customizable:focus { outline: 1px }").is_ok());
        assert!(check_css("no block").is_err());
        assert!(check_css("").is_ok());
    }
}
