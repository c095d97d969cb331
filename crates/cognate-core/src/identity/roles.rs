//! Which role an identity's credentials are for: the pool's unauthenticated role, or for a
//! signed-in identity its authenticated role unless a role mapping of the login's provider
//! decides otherwise (Token: the token's `cognito:preferred_role` / `cognito:roles`; Rules:
//! the first rule whose claim matches), with AmbiguousRoleResolution when nothing does.

use cognate_api::identity::{AmbiguousRoleResolutionType, MappingRuleMatchType, RoleMapping, RoleMappingType};
use cognate_api::ErrorCode;
use serde_json::{Map, Value};

use super::logins::VerifiedLogin;
use super::pools::IdentityPoolDoc;
use crate::error::{ApiError, ApiResult};

pub const AUTHENTICATED: &str = "authenticated";
pub const UNAUTHENTICATED: &str = "unauthenticated";

fn no_role() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidIdentityPoolConfigurationException,
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )
}

fn configured(pool: &IdentityPoolDoc, which: &str) -> ApiResult<String> {
    pool.roles.get(which).cloned().ok_or_else(no_role)
}

/// The role of an identity signed in with `logins` (none: unauthenticated).
pub fn resolve(pool: &IdentityPoolDoc, logins: &[VerifiedLogin], custom_role_arn: Option<&str>) -> ApiResult<String> {
    if logins.is_empty() {
        return configured(pool, UNAUTHENTICATED);
    }
    for login in logins {
        let mapping =
            pool.role_mappings.get(&login.mapping_key).or_else(|| pool.role_mappings.get(&login.login.provider));
        if let Some(mapping) = mapping {
            return by_mapping(pool, mapping, &login.claims, custom_role_arn, &login.mapping_key);
        }
    }
    configured(pool, AUTHENTICATED)
}

fn by_mapping(
    pool: &IdentityPoolDoc,
    mapping: &RoleMapping,
    claims: &Map<String, Value>,
    custom_role_arn: Option<&str>,
    provider: &str,
) -> ApiResult<String> {
    let chosen = match mapping.r#type {
        RoleMappingType::Token => from_token(claims, custom_role_arn),
        RoleMappingType::Rules => mapping
            .rules_configuration
            .iter()
            .flat_map(|c| &c.rules)
            .find(|rule| claim_matches(claims.get(&rule.claim), &rule.match_type, &rule.value))
            .map(|rule| rule.role_arn.clone()),
        RoleMappingType::Unknown(_) => None,
    };
    if let Some(role) = chosen {
        return Ok(role);
    }
    match mapping.ambiguous_role_resolution {
        Some(AmbiguousRoleResolutionType::AuthenticatedRole) => configured(pool, AUTHENTICATED),
        _ => Err(ApiError::new(
            ErrorCode::NotAuthorizedException,
            format!("Ambiguous role mapping rules for: {provider}"),
        )),
    }
}

/// Token mapping: the CustomRoleArn if the token allows it, else the preferred role, else the
/// token's only role.
fn from_token(claims: &Map<String, Value>, custom_role_arn: Option<&str>) -> Option<String> {
    let roles: Vec<&str> =
        claims.get("cognito:roles").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if let Some(custom) = custom_role_arn {
        return roles.contains(&custom).then(|| custom.to_owned());
    }
    if let Some(preferred) = claims.get("cognito:preferred_role").and_then(Value::as_str) {
        return Some(preferred.to_owned());
    }
    match roles.as_slice() {
        [only] => Some((*only).to_owned()),
        _ => None,
    }
}

/// A rule's test of one claim. A list claim (`cognito:groups`) matches when one of its
/// values does (NotEqual: when none equals).
fn claim_matches(claim: Option<&Value>, match_type: &MappingRuleMatchType, expected: &str) -> bool {
    let values: Vec<String> = match claim {
        None | Some(Value::Null) => return false,
        Some(Value::Array(items)) => items.iter().map(text).collect(),
        Some(other) => vec![text(other)],
    };
    let one = |value: &String| match match_type {
        MappingRuleMatchType::Equals => value == expected,
        MappingRuleMatchType::Contains => value.contains(expected),
        MappingRuleMatchType::StartsWith => value.starts_with(expected),
        MappingRuleMatchType::NotEqual => value != expected,
        MappingRuleMatchType::Unknown(_) => false,
    };
    match match_type {
        MappingRuleMatchType::NotEqual => values.iter().all(one),
        _ => values.iter().any(one),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_api::identity::{MappingRule, RulesConfigurationType};
    use cognate_store::IdentityLogin;
    use serde_json::json;

    fn pool(mapping: Option<RoleMapping>) -> IdentityPoolDoc {
        let mut doc = IdentityPoolDoc::default();
        doc.roles.insert(AUTHENTICATED.into(), "arn:role/auth".into());
        doc.roles.insert(UNAUTHENTICATED.into(), "arn:role/guest".into());
        if let Some(mapping) = mapping {
            doc.role_mappings.insert("idp:client".into(), mapping);
        }
        doc
    }

    fn login(claims: Value) -> VerifiedLogin {
        VerifiedLogin {
            login: IdentityLogin { provider: "idp".into(), subject: "s".into() },
            mapping_key: "idp:client".into(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn rules(
        rules: Vec<(&str, MappingRuleMatchType, &str, &str)>,
        ambiguous: AmbiguousRoleResolutionType,
    ) -> RoleMapping {
        RoleMapping {
            r#type: RoleMappingType::Rules,
            ambiguous_role_resolution: Some(ambiguous),
            rules_configuration: Some(RulesConfigurationType {
                rules: rules
                    .into_iter()
                    .map(|(claim, match_type, value, role)| MappingRule {
                        claim: claim.into(),
                        match_type,
                        value: value.into(),
                        role_arn: role.into(),
                    })
                    .collect(),
            }),
        }
    }

    #[test]
    fn unauthenticated_and_default_roles() {
        assert_eq!(resolve(&pool(None), &[], None).ok().as_deref(), Some("arn:role/guest"));
        assert_eq!(resolve(&pool(None), &[login(json!({}))], None).ok().as_deref(), Some("arn:role/auth"));
        assert!(resolve(&IdentityPoolDoc::default(), &[], None).is_err());
    }

    #[test]
    fn rules_pick_the_first_match_and_ambiguity_follows_the_setting() {
        let mapping = rules(
            vec![
                ("cognito:groups", MappingRuleMatchType::Contains, "admin", "arn:role/admins"),
                ("email", MappingRuleMatchType::StartsWith, "ops@", "arn:role/ops"),
            ],
            AmbiguousRoleResolutionType::Deny,
        );
        let admin = login(json!({"cognito:groups": ["staff", "admins"], "email": "ops@x"}));
        assert_eq!(resolve(&pool(Some(mapping.clone())), &[admin], None).ok().as_deref(), Some("arn:role/admins"));
        let ops = login(json!({"cognito:groups": ["staff"], "email": "ops@x"}));
        assert_eq!(resolve(&pool(Some(mapping.clone())), &[ops], None).ok().as_deref(), Some("arn:role/ops"));
        let nobody = login(json!({"email": "a@x"}));
        assert!(resolve(&pool(Some(mapping)), std::slice::from_ref(&nobody), None).is_err(), "Deny");
        let lenient = rules(vec![], AmbiguousRoleResolutionType::AuthenticatedRole);
        assert_eq!(resolve(&pool(Some(lenient)), &[nobody], None).ok().as_deref(), Some("arn:role/auth"));
        assert!(claim_matches(Some(&json!("b")), &MappingRuleMatchType::NotEqual, "a"));
        assert!(!claim_matches(Some(&json!(["a", "b"])), &MappingRuleMatchType::NotEqual, "a"));
        assert!(claim_matches(Some(&json!("x")), &MappingRuleMatchType::Equals, "x"));
    }

    #[test]
    fn token_mapping_uses_the_tokens_roles() {
        let mapping = RoleMapping {
            r#type: RoleMappingType::Token,
            ambiguous_role_resolution: Some(AmbiguousRoleResolutionType::Deny),
            rules_configuration: None,
        };
        let two = login(json!({"cognito:roles": ["arn:role/a", "arn:role/b"], "cognito:preferred_role": "arn:role/a"}));
        assert_eq!(
            resolve(&pool(Some(mapping.clone())), std::slice::from_ref(&two), None).ok().as_deref(),
            Some("arn:role/a")
        );
        let chosen = resolve(&pool(Some(mapping.clone())), std::slice::from_ref(&two), Some("arn:role/b"));
        assert_eq!(chosen.ok().as_deref(), Some("arn:role/b"));
        assert!(resolve(&pool(Some(mapping.clone())), &[two], Some("arn:role/other")).is_err());
        assert!(resolve(&pool(Some(mapping)), &[login(json!({}))], None).is_err(), "no role in the token: Deny");
    }
}
