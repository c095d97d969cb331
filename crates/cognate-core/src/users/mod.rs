//! The user of a pool: identity (username, sub, aliases), attributes validated against the
//! pool's schema, status, password verifier, and what the store indexes for ListUsers.

pub mod attributes;
pub mod changes;
pub mod codes;
pub mod delivery;
pub mod lockout;
pub mod password;
pub mod totp;

use std::collections::BTreeMap;

use cognate_api::idp::{AttributeType, UserPoolType, UserStatusType, UserType};
use cognate_api::Sensitive;
use cognate_store::{StoreError, UserIndex, UserRecord, UserStatus, UsernameKey};
use serde::{Deserialize, Serialize};

use crate::context::{timestamp, Ctx};
pub use crate::error::alias_exists;
use crate::error::{ApiError, ApiResult};
use crate::records::{decode_doc, encode_doc};

/// Attributes ListUsers can filter on (AWS's documented set).
pub const SEARCHABLE: &[&str] = &[
    "username",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "cognito:user_status",
    "status",
    "sub",
];

/// State kept with a user beyond attributes and status.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserDoc {
    /// When a temporary password (FORCE_CHANGE_PASSWORD) stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary_password_expires_ms: Option<i64>,
    /// A changed email/phone waiting for verification when the pool keeps the original
    /// value until then (UserAttributeUpdateSettings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_attributes: BTreeMap<String, String>,
    /// Tokens issued before this instant are revoked (GlobalSignOut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_valid_after_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "MfaState::is_empty")]
    pub mfa: MfaState,
    /// Devices the user signed in from (device tracking).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// External identities linked to this user (AdminLinkProviderForUser) as
    /// `{provider}:{subject}`: unique in the pool (an alias of kind `provider`), so a sign-in
    /// through the provider finds this user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_providers: Vec<String>,
}

/// A tracked device. `secret` (its sealed SRP salt and verifier) is set by ConfirmDevice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub key: String,
    pub group_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `Some(true)` remembered, `Some(false)` not remembered, `None` not yet decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered: Option<bool>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub last_auth_ms: i64,
}

impl UserDoc {
    pub fn device(&self, key: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.key == key)
    }

    pub fn device_mut(&mut self, key: &str) -> Option<&mut Device> {
        self.devices.iter_mut().find(|d| d.key == key)
    }
}

/// The user's MFA factors. TOTP secrets are sealed under the master key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MfaState {
    /// Verified TOTP secret, and the last time step accepted (a code is never accepted twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<i64>,
    /// Secret handed out by AssociateSoftwareToken, waiting for VerifySoftwareToken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_pending: Option<String>,
    #[serde(default)]
    pub totp_enabled: bool,
    #[serde(default)]
    pub sms_enabled: bool,
    #[serde(default)]
    pub email_enabled: bool,
    /// SOFTWARE_TOKEN_MFA, SMS_MFA or EMAIL_OTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<String>,
}

impl MfaState {
    fn is_empty(&self) -> bool {
        *self == MfaState::default()
    }

    /// Enabled factors in Cognito's names.
    pub fn enabled(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.sms_enabled {
            out.push("SMS_MFA");
        }
        if self.totp_enabled {
            out.push("SOFTWARE_TOKEN_MFA");
        }
        if self.email_enabled {
            out.push("EMAIL_OTP");
        }
        out
    }
}

/// A user as the operations work with it.
#[derive(Clone, Debug)]
pub struct User {
    pub record: UserRecord,
    pub attributes: BTreeMap<String, String>,
    pub doc: UserDoc,
}

pub fn user_not_found() -> ApiError {
    ApiError::new(cognate_api::ErrorCode::UserNotFoundException, "User does not exist.")
}

/// Pools are case-sensitive unless created with `UsernameConfiguration.CaseSensitive = false`.
pub fn case_sensitive(pool: &UserPoolType) -> bool {
    pool.username_configuration.as_ref().is_none_or(|c| c.case_sensitive)
}

pub fn username_key(pool: &UserPoolType, username: &str) -> UsernameKey {
    UsernameKey::new(if case_sensitive(pool) { username.to_owned() } else { username.to_lowercase() })
}

/// Email and phone keys for alias uniqueness: emails compare case-insensitively.
pub fn alias_key(kind: &str, value: &str) -> String {
    if kind == "email" {
        value.to_lowercase()
    } else {
        value.to_owned()
    }
}

fn is_username_attribute(pool: &UserPoolType, name: &str) -> bool {
    pool.username_attributes.iter().flatten().any(|a| a.as_str() == name)
}

fn is_alias_attribute(pool: &UserPoolType, name: &str) -> bool {
    pool.alias_attributes.iter().flatten().any(|a| a.as_str() == name)
}

/// The store's form of a status (Cognito's names; one a newer model adds is kept as UNKNOWN).
pub fn stored_status(status: &UserStatusType) -> UserStatus {
    UserStatus::parse(status.as_str()).unwrap_or(UserStatus::Unknown)
}

/// What a new user starts with.
pub struct NewUser {
    pub pool_id: String,
    pub username: String,
    pub sub: String,
    pub status: UserStatusType,
    pub attributes: BTreeMap<String, String>,
    pub sealed_password: String,
    pub doc: UserDoc,
}

impl User {
    pub fn create(pool: &UserPoolType, new: NewUser, now_ms: i64) -> User {
        User {
            record: UserRecord {
                username_key: username_key(pool, &new.username),
                pool_id: new.pool_id.into(),
                username: new.username,
                sub: new.sub.into(),
                status: stored_status(&new.status),
                enabled: true,
                created_ms: now_ms,
                modified_ms: now_ms,
                version: 1,
                attributes: String::new(),
                password: Some(new.sealed_password),
                doc: String::new(),
            },
            attributes: new.attributes,
            doc: new.doc,
        }
    }

    pub fn from_record(record: UserRecord) -> ApiResult<User> {
        let attributes = decode_doc(&record.attributes)?;
        let doc = decode_doc(&record.doc)?;
        Ok(User { record, attributes, doc })
    }

    pub fn status(&self) -> UserStatusType {
        UserStatusType::from(self.record.status.as_str())
    }

    pub fn set_status(&mut self, status: UserStatusType) {
        self.record.status = stored_status(&status);
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn is_verified(&self, name: &str) -> bool {
        self.attr(&format!("{name}_verified")) == Some("true")
    }

    /// Serialises attributes and doc back into the record, with the next version.
    pub fn prepare_write(&mut self, now_ms: i64) -> ApiResult<()> {
        self.record.attributes = encode_doc(&self.attributes)?;
        self.record.doc = encode_doc(&self.doc)?;
        self.record.modified_ms = now_ms;
        Ok(())
    }

    /// What the store must index: the searchable values, and the aliases that must be
    /// unique in the pool. Username attributes (email/phone as the username) are unique
    /// whatever their verification; alias attributes only once verified;
    /// preferred_username always when it is an alias.
    pub fn index(&self, pool: &UserPoolType) -> UserIndex {
        let mut search = vec![
            ("username".to_owned(), self.record.username_key.to_string()),
            ("sub".to_owned(), self.record.sub.to_string()),
            ("cognito:user_status".to_owned(), self.record.status.as_str().to_owned()),
            ("status".to_owned(), if self.record.enabled { "Enabled" } else { "Disabled" }.to_owned()),
        ];
        for name in ["email", "phone_number", "name", "given_name", "family_name", "preferred_username"] {
            if let Some(value) = self.attr(name) {
                search.push((name.to_owned(), value.to_owned()));
            }
        }
        let mut aliases = Vec::new();
        for kind in ["email", "phone_number"] {
            if let Some(value) = self.attr(kind) {
                if is_username_attribute(pool, kind) || (is_alias_attribute(pool, kind) && self.is_verified(kind)) {
                    aliases.push((kind.to_owned(), alias_key(kind, value)));
                }
            }
        }
        if let Some(value) = self.attr("preferred_username") {
            if is_alias_attribute(pool, "preferred_username") {
                aliases.push(("preferred_username".to_owned(), username_key(pool, value).into_string()));
            }
        }
        for link in &self.doc.linked_providers {
            aliases.push(("provider".to_owned(), link.clone()));
        }
        UserIndex { search, aliases }
    }

    /// Attributes in the order Cognito shows them (sub first, then by name), optionally
    /// restricted to `only`.
    pub fn attribute_list(&self, only: Option<&[String]>) -> Vec<AttributeType> {
        let mut names: Vec<&String> = self.attributes.keys().collect();
        names.sort_by_key(|n| (n.as_str() != "sub", n.as_str()));
        names
            .into_iter()
            .filter(|n| only.is_none_or(|list| list.iter().any(|o| o == *n)))
            .map(|n| AttributeType { name: n.clone(), value: self.attributes.get(n).cloned().map(Sensitive) })
            .collect()
    }

    pub fn to_user_type(&self, only: Option<&[String]>) -> UserType {
        UserType {
            username: Some(Sensitive(self.record.username.clone())),
            attributes: Some(self.attribute_list(only)),
            user_create_date: Some(timestamp(self.record.created_ms)),
            user_last_modified_date: Some(timestamp(self.record.modified_ms)),
            enabled: Some(self.record.enabled),
            user_status: Some(self.status()),
            mfa_options: None,
        }
    }
}

/// Finds a user by username, and (as Cognito does for sign-in and admin calls) by a
/// sign-in alias, an email/phone username attribute, or the `sub`.
pub async fn find_user(ctx: &Ctx, pool_id: &str, pool: &UserPoolType, login: &str) -> ApiResult<Option<User>> {
    let key = username_key(pool, login);
    let mut alias_kinds = Vec::new();
    if login.contains('@') {
        alias_kinds.push(("email", alias_key("email", login)));
    } else if login.starts_with('+') {
        alias_kinds.push(("phone_number", login.to_owned()));
    }
    if is_alias_attribute(pool, "preferred_username") {
        alias_kinds.push(("preferred_username", key.to_string()));
    }
    let pool_id = pool_id.to_owned();
    let login = login.to_owned();
    let found = ctx
        .store(move |s| {
            if let Some(user) = s.get_user(&pool_id, &key)? {
                return Ok(Some(user));
            }
            for (kind, alias) in &alias_kinds {
                if let Some(user) = s.get_user_by_alias(&pool_id, kind, alias)? {
                    return Ok(Some(user));
                }
            }
            s.get_user_by_sub(&pool_id, &login)
        })
        .await?;
    found.map(User::from_record).transpose()
}

pub async fn require_user(ctx: &Ctx, pool_id: &str, pool: &UserPoolType, login: &str) -> ApiResult<User> {
    find_user(ctx, pool_id, pool, login).await?.ok_or_else(user_not_found)
}

/// Writes a changed user with compare-and-set. The caller re-reads and retries on
/// `VersionConflict` where that makes sense.
pub async fn save_user(ctx: &Ctx, pool: &UserPoolType, user: &mut User) -> ApiResult<Result<(), StoreError>> {
    user.prepare_write(ctx.now_ms())?;
    user.record.version += 1;
    let record = user.record.clone();
    let index = user.index(pool);
    ctx.store(move |s| Ok(s.update_user(&record, &index))).await
}

/// Like [`save_user`] but any store conflict is an error for the caller.
pub async fn save_user_or_fail(ctx: &Ctx, pool: &UserPoolType, user: &mut User) -> ApiResult<()> {
    let answer = save_user(ctx, pool, user).await?;
    match crate::records::written(answer, (), user_not_found)? {
        Some(()) => Ok(()),
        None => Err(crate::records::gave_up_on_conflicts(ctx, "The user")),
    }
}
