//! User attributes checked against the pool's schema: existence, mutability, type, length
//! and value limits, and the formats Cognito enforces for email and phone numbers.

use std::collections::BTreeMap;

use cognate_api::idp::{AttributeDataType, AttributeType, SchemaAttributeType, UserPoolType};

use crate::error::{ApiError, ApiResult};

/// Who is writing, which decides what may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Creation of the user (SignUp, AdminCreateUser): immutable attributes may be set.
    Creation,
    /// A later admin update: developer-only attributes allowed, immutable ones not.
    Admin,
}

fn schema_error(problems: &[String]) -> ApiError {
    ApiError::invalid_parameter(format!("Attributes did not conform to the schema: {}", problems.join("; ")))
}

pub fn schema_entry<'a>(pool: &'a UserPoolType, name: &str) -> Option<&'a SchemaAttributeType> {
    pool.schema_attributes.iter().flatten().find(|a| a.name.as_deref() == Some(name))
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_phone(value: &str) -> bool {
    value
        .strip_prefix('+')
        .is_some_and(|digits| (4..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn check_value(entry: &SchemaAttributeType, name: &str, value: &str) -> Option<String> {
    match entry.attribute_data_type.as_ref().unwrap_or(&AttributeDataType::String) {
        AttributeDataType::Boolean => {
            if value != "true" && value != "false" {
                return Some(format!("{name}: Value must be true or false"));
            }
        }
        AttributeDataType::Number => {
            let Ok(number) = value.parse::<f64>() else {
                return Some(format!("{name}: Number is not valid"));
            };
            let limits = entry.number_attribute_constraints.as_ref();
            let bound = |text: Option<&String>| text.and_then(|t| t.parse::<f64>().ok());
            if bound(limits.and_then(|c| c.min_value.as_ref())).is_some_and(|min| number < min) {
                return Some(format!("{name}: Number must be greater than or equal to the minimum value"));
            }
            if bound(limits.and_then(|c| c.max_value.as_ref())).is_some_and(|max| number > max) {
                return Some(format!("{name}: Number must be less than or equal to the maximum value"));
            }
        }
        _ => {
            let limits = entry.string_attribute_constraints.as_ref();
            let len = value.chars().count();
            let bound = |text: Option<&String>| text.and_then(|t| t.parse::<usize>().ok());
            if let Some(max) = bound(limits.and_then(|c| c.max_length.as_ref())) {
                if len > max {
                    return Some(format!("{name}: String must be no longer than {max} characters"));
                }
            }
            if let Some(min) = bound(limits.and_then(|c| c.min_length.as_ref())) {
                if len < min && !value.is_empty() {
                    return Some(format!("{name}: String must be no shorter than {min} characters"));
                }
            }
        }
    }
    None
}

/// Checks requested attribute changes; returns them as (name, value) pairs. `None` values
/// (an attribute named without a value) are treated as the empty string, as Cognito does.
pub fn check_changes(
    pool: &UserPoolType,
    changes: &[AttributeType],
    writer: Writer,
) -> ApiResult<Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        let name = change.name.as_str();
        let value = change.value.as_ref().map(|v| v.expose().clone()).unwrap_or_default();
        let Some(entry) = schema_entry(pool, name) else {
            problems.push(format!("{name}: Attribute does not exist in the schema."));
            continue;
        };
        if name == "sub" {
            problems.push("sub: Attribute cannot be updated. (changing an immutable attribute)".to_owned());
            continue;
        }
        if writer == Writer::Admin && entry.mutable == Some(false) {
            problems.push(format!("{name}: Attribute cannot be updated. (changing an immutable attribute)"));
            continue;
        }
        if let Some(problem) = check_value(entry, name, &value) {
            problems.push(problem);
            continue;
        }
        if name == "email" && !value.is_empty() && !is_email(&value) {
            return Err(ApiError::invalid_parameter("Invalid email address format."));
        }
        if name == "phone_number" && !value.is_empty() && !is_phone(&value) {
            return Err(ApiError::invalid_parameter("Invalid phone number format."));
        }
        out.push((name.to_owned(), value));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(schema_error(&problems))
    }
}

/// Every attribute the schema marks required must be present and non-empty.
pub fn check_required(pool: &UserPoolType, attributes: &BTreeMap<String, String>) -> ApiResult<()> {
    let problems: Vec<String> = pool
        .schema_attributes
        .iter()
        .flatten()
        .filter(|a| a.required == Some(true))
        .filter_map(|a| a.name.as_deref())
        .filter(|name| *name != "sub" && attributes.get(*name).is_none_or(|v| v.is_empty()))
        .map(|name| format!("{name}: The attribute is required"))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(schema_error(&problems))
    }
}

pub fn is_valid_email(value: &str) -> bool {
    is_email(value)
}

pub fn is_valid_phone(value: &str) -> bool {
    is_phone(value)
}

/// The standard (OIDC) attributes every pool has, in the order Cognito lists them.
pub const STANDARD_ATTRIBUTES: &[(&str, AttributeDataType)] = &[
    ("sub", AttributeDataType::String),
    ("name", AttributeDataType::String),
    ("given_name", AttributeDataType::String),
    ("family_name", AttributeDataType::String),
    ("middle_name", AttributeDataType::String),
    ("nickname", AttributeDataType::String),
    ("preferred_username", AttributeDataType::String),
    ("profile", AttributeDataType::String),
    ("picture", AttributeDataType::String),
    ("website", AttributeDataType::String),
    ("email", AttributeDataType::String),
    ("email_verified", AttributeDataType::Boolean),
    ("gender", AttributeDataType::String),
    ("birthdate", AttributeDataType::String),
    ("zoneinfo", AttributeDataType::String),
    ("locale", AttributeDataType::String),
    ("phone_number", AttributeDataType::String),
    ("phone_number_verified", AttributeDataType::Boolean),
    ("address", AttributeDataType::String),
    ("updated_at", AttributeDataType::Number),
];

/// The columns of a user import CSV: Cognito's fixed list, then the pool's custom attributes.
pub fn csv_header(pool: &UserPoolType) -> Vec<String> {
    let mut header: Vec<String> =
        STANDARD_ATTRIBUTES.iter().map(|(n, _)| n.to_string()).filter(|n| n != "sub").collect();
    header.push("cognito:mfa_enabled".into());
    header.push("cognito:username".into());
    header.extend(
        pool.schema_attributes.iter().flatten().filter_map(|a| a.name.clone()).filter(|n| n.starts_with("custom:")),
    );
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_and_phone_formats() {
        assert!(is_email("a@b.co"));
        assert!(!is_email("a b@c.d") && !is_email("@x") && !is_email("x@"));
        assert!(is_phone("+15555550100"));
        assert!(!is_phone("5555550100") && !is_phone("+1-555"));
    }
}
