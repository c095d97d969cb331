//! The error every operation returns, rendered in AWS's JSON envelope by the protocol layer.

use cognate_api::{ErrorCode, Service};

/// Codes the protocol layer answers with that are not in the Cognito models (generic AWS
/// JSON-protocol and SigV4 errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolCode {
    UnknownOperation,
    Serialization,
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
    /// An operation of the model that Cognate does not implement (yet). A client fault,
    /// so SDKs do not retry it.
    NotImplemented,
    RequestTooLarge,
    /// Temporary credentials whose session has expired.
    ExpiredToken,
    /// A caller whose kind the operation does not accept (e.g. an identity's temporary
    /// credentials on an administrator's operation).
    AccessDenied,
    /// Cognito Sync's UpdateRecords when the SyncTrigger function does not answer in time: the
    /// API reference and the developer guide document it (HTTP 400), botocore's model does not.
    LambdaSocketTimeout,
}

impl ProtocolCode {
    fn as_str(self) -> &'static str {
        match self {
            ProtocolCode::UnknownOperation => "UnknownOperationException",
            ProtocolCode::Serialization => "SerializationException",
            ProtocolCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ProtocolCode::IncompleteSignature => "IncompleteSignatureException",
            ProtocolCode::InvalidSignature => "InvalidSignatureException",
            ProtocolCode::UnrecognizedClient => "UnrecognizedClientException",
            ProtocolCode::NotImplemented => "UnsupportedOperationException",
            ProtocolCode::RequestTooLarge => "RequestEntityTooLargeException",
            ProtocolCode::AccessDenied => "AccessDeniedException",
            ProtocolCode::ExpiredToken => "ExpiredTokenException",
            ProtocolCode::LambdaSocketTimeout => "LambdaSocketTimeoutException",
        }
    }

    fn http_status(self) -> u16 {
        match self {
            ProtocolCode::RequestTooLarge => 413,
            _ => 400,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// A code the model declares (its HTTP status depends on the service).
    Modelled(ErrorCode),
    Protocol(ProtocolCode),
}

#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code: Code::Modelled(code), message: message.into() }
    }

    pub fn protocol(code: ProtocolCode, message: impl Into<String>) -> Self {
        ApiError { code: Code::Protocol(code), message: message.into() }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterException, message)
    }

    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotAuthorizedException, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFoundException, message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::LimitExceededException, message)
    }

    /// A real server fault. The message returned to the client is generic; the cause is logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ErrorCode::InternalErrorException, "Internal server error.")
    }

    pub fn type_name(&self) -> &'static str {
        match self.code {
            Code::Modelled(code) => code.as_str(),
            Code::Protocol(code) => code.as_str(),
        }
    }

    pub fn http_status(&self, service: Service) -> u16 {
        match self.code {
            Code::Modelled(code) => code.http_status(service),
            Code::Protocol(code) => code.http_status(),
        }
    }

    /// Errors that any operation may answer whatever its model entry lists.
    pub fn is_generic(&self) -> bool {
        matches!(
            self.code,
            Code::Protocol(_)
                | Code::Modelled(
                    ErrorCode::InternalErrorException
                        | ErrorCode::InternalServerException
                        | ErrorCode::InvalidParameterException
                )
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Maps an alias conflict to Cognito's error.
pub fn alias_exists(kind: &str) -> ApiError {
    let shown = if kind == "phone_number" { "phone_number" } else { kind };
    ApiError::new(
        cognate_api::ErrorCode::AliasExistsException,
        format!("An account with the given {shown} already exists."),
    )
}

/// What a store error means to a client when the operation did not answer it more precisely
/// (most name the id in their own not-found message). Per entity: a missing user is
/// UserNotFoundException, a missing pool, client, group or job ResourceNotFoundException, a
/// lost race TooManyRequestsException (which SDKs retry); only backend failures are internal.
impl From<cognate_store::StoreError> for ApiError {
    fn from(err: cognate_store::StoreError) -> Self {
        use cognate_store::{Entity, StoreError};
        match err {
            StoreError::NotFound(Entity::User) => {
                ApiError::new(ErrorCode::UserNotFoundException, "User does not exist.")
            }
            StoreError::NotFound(entity) => ApiError::not_found(format!("The {entity} does not exist.")),
            StoreError::AlreadyExists(Entity::User) => {
                ApiError::new(ErrorCode::UsernameExistsException, "User account already exists")
            }
            StoreError::AlreadyExists(Entity::Group) => {
                ApiError::new(ErrorCode::GroupExistsException, "A group with the name already exists.")
            }
            StoreError::VersionConflict(entity) => ApiError::new(
                ErrorCode::TooManyRequestsException,
                format!("The {entity} was modified concurrently; retry."),
            ),
            StoreError::AliasTaken(kind) => alias_exists(&kind),
            other @ (StoreError::AlreadyExists(_) | StoreError::LimitExceeded | StoreError::Backend(_)) => {
                ApiError::internal(other)
            }
        }
    }
}
