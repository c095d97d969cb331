//! Identifiers as types, so that one kind cannot be passed where another is expected: a
//! username where the lookup key is (the two differ by the pool's case rule), a client id
//! where a pool id is. Each is text underneath (`Deref<Target = str>`), stored as text.

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    )*};
}

ids! {
    /// A user pool's id: `<region>_<random>`.
    PoolId;
    /// An app client's id (26 characters).
    ClientId;
    /// The key a user is found by: the username as the pool compares it (lower-cased in a
    /// case-insensitive pool). Unique per pool; the username itself is shown, not looked up.
    UsernameKey;
    /// A user's `sub` (a UUID): unique per pool, never changed.
    Sub;
    /// An identity pool's id: `<region>:<uuid>`.
    IdentityPoolId;
}

/// A user's status, as Cognito names it (stored as that name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Unconfirmed,
    Confirmed,
    ForceChangePassword,
    ResetRequired,
    ExternalProvider,
    Archived,
    Compromised,
    Unknown,
}

impl UserStatus {
    const ALL: [UserStatus; 8] = [
        UserStatus::Unconfirmed,
        UserStatus::Confirmed,
        UserStatus::ForceChangePassword,
        UserStatus::ResetRequired,
        UserStatus::ExternalProvider,
        UserStatus::Archived,
        UserStatus::Compromised,
        UserStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Unconfirmed => "UNCONFIRMED",
            UserStatus::Confirmed => "CONFIRMED",
            UserStatus::ForceChangePassword => "FORCE_CHANGE_PASSWORD",
            UserStatus::ResetRequired => "RESET_REQUIRED",
            UserStatus::ExternalProvider => "EXTERNAL_PROVIDER",
            UserStatus::Archived => "ARCHIVED",
            UserStatus::Compromised => "COMPROMISED",
            UserStatus::Unknown => "UNKNOWN",
        }
    }

    /// The status a stored name stands for (None: not a status name).
    pub fn parse(name: &str) -> Option<UserStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in UserStatus::ALL {
            assert_eq!(UserStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(UserStatus::parse("confirmed"), None);
    }

    #[test]
    fn ids_compare_with_text_and_deref_to_it() {
        let key = UsernameKey::from("alice");
        assert_eq!(key, "alice");
        assert_eq!(key.len(), 5);
        assert_eq!(key.to_string(), "alice");
    }
}
