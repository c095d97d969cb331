//! The Cognito wire contract as Rust data, generated from the pinned AWS models
//! (`model/`, see `codegen/generate.py`), plus the small runtime the generated code uses.
//! No I/O happens here.

pub mod generated;
mod sensitive;
pub mod validate;

pub use generated::errors::ErrorCode;
pub use generated::ops::OPERATIONS;
pub use generated::{identity, idp, sync};
pub use sensitive::Sensitive;

/// Epoch seconds, as the JSON protocols carry timestamps (fractional numbers).
pub type Timestamp = f64;
/// Base64 text, as the JSON protocols carry blobs.
pub type Blob = String;

/// The three Cognito services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    CognitoIdp,
    CognitoIdentity,
    CognitoSync,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::CognitoIdp, Service::CognitoIdentity, Service::CognitoSync];

    /// The SigV4 signing name (and endpoint prefix).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::CognitoIdp => "cognito-idp",
            Service::CognitoIdentity => "cognito-identity",
            Service::CognitoSync => "cognito-sync",
        }
    }

    /// The `X-Amz-Target` prefix of a JSON 1.1 service (empty for REST-JSON).
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::CognitoIdp => generated::ops::COGNITOIDP_TARGET_PREFIX,
            Service::CognitoIdentity => generated::ops::COGNITOIDENTITY_TARGET_PREFIX,
            Service::CognitoSync => generated::ops::COGNITOSYNC_TARGET_PREFIX,
        }
    }

    /// The constraint table of the service's shapes.
    pub fn shapes(self) -> &'static [validate::Shape] {
        match self {
            Service::CognitoIdp => idp::shapes::SHAPES,
            Service::CognitoIdentity => identity::shapes::SHAPES,
            Service::CognitoSync => sync::shapes::SHAPES,
        }
    }

    pub fn from_target_prefix(prefix: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| !s.target_prefix().is_empty() && s.target_prefix() == prefix)
    }
}

/// One row of the operation table.
#[derive(Debug)]
pub struct Operation {
    pub service: Service,
    pub name: &'static str,
    /// False for the operations the model marks `authtype: none` (SignUp, InitiateAuth, ...).
    pub signed: bool,
    pub input: Option<validate::ShapeRef>,
    /// Name of the input shape, which is also the generated Rust type's name.
    pub input_shape: &'static str,
    pub output: Option<validate::ShapeRef>,
    /// The errors the model lists for this operation.
    pub errors: &'static [ErrorCode],
    pub http_method: &'static str,
    pub http_uri: &'static str,
}

impl Operation {
    pub fn find(service: Service, name: &str) -> Option<&'static Operation> {
        OPERATIONS.iter().find(|op| op.service == service && op.name == name)
    }

    pub fn of_service(service: Service) -> impl Iterator<Item = &'static Operation> {
        OPERATIONS.iter().filter(move |op| op.service == service)
    }
}

/// Declares a forward-compatible string enum: known values get variants, anything else
/// round-trips through `Unknown` so a newer client's value never fails to parse.
#[macro_export]
macro_rules! string_enum {
    ($name:ident { $($variant:ident = $value:literal),* $(,)? }) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)*
            Unknown(String),
        }

        impl $name {
            pub const VALUES: &'static [&'static str] = &[$($value),*];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other.as_str(),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Unknown(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok($name::from(text.as_ref()))
            }
        }
    };
}

/// `skip_serializing_if` helper for the generated structs: absent members are omitted, as
/// the real service omits them, rather than sent as `null`.
pub fn is_none<T>(value: &Option<T>) -> bool {
    value.is_none()
}
