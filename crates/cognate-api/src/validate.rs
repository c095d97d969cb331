//! Checks a request body against the model's constraint traits (required, length, range,
//! pattern, enum) before any typed decoding, so that a bad request gets AWS's own
//! `InvalidParameterException` text and never reaches an operation.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::generated::ops::PATTERNS;

/// Index into a service's shape table.
pub type ShapeRef = u16;

#[derive(Debug)]
pub struct Shape {
    pub name: &'static str,
    pub sensitive: bool,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Structure(&'static [Member]),
    List { member: ShapeRef, min: Option<u64>, max: Option<u64> },
    Map { key: ShapeRef, value: ShapeRef, min: Option<u64>, max: Option<u64> },
    String { min: Option<u64>, max: Option<u64>, pattern: Option<usize>, values: &'static [&'static str] },
    Integer { min: Option<i64>, max: Option<i64> },
    Boolean,
    Double,
    Timestamp,
    Blob { min: Option<u64>, max: Option<u64> },
    Document,
}

#[derive(Debug)]
pub struct Member {
    /// The JSON member name.
    pub name: &'static str,
    /// The name AWS validation messages use (lowerCamelCase).
    pub path: &'static str,
    pub shape: ShapeRef,
    pub required: bool,
    /// For REST-JSON members bound to the URI, query string or a header.
    pub location: Option<(Location, &'static str)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Uri,
    Querystring,
    Header,
}

/// Why a body was refused.
#[derive(Debug, PartialEq)]
pub enum Invalid {
    /// The JSON does not have the model's shape (wrong type): `SerializationException`.
    Serialization(String),
    /// A constraint failed: `InvalidParameterException` with this message.
    Constraint(String),
}

/// At most this many characters of a value are echoed in a message (AWS truncates long
/// values too); a client's 100 KB string must not come back 100 KB long.
const SHOWN_CHARS: usize = 256;
/// At most this many characters of a map key appear in a member path.
const KEY_CHARS: usize = 64;
/// Violations are listed until the message reaches this many bytes; later ones are only
/// counted, so a long list of bad items cannot build a huge message.
const LISTED_BYTES: usize = 2048;

/// Validates `value` against shape `root` of `shapes`. `null` members count as absent.
///
/// The value of a member whose shape is sensitive (`"sensitive": true` in the model), or
/// that sits anywhere inside a sensitive map or structure, is never echoed: such a
/// violation is reported at the path of the outermost sensitive shape, without the value
/// and without the keys or member names below it (AWS's `Value at 'authParameters' failed
/// to satisfy constraint: ...`). Other values and map keys are echoed truncated.
pub fn validate(shapes: &'static [Shape], root: ShapeRef, value: &Value) -> Result<(), Invalid> {
    let mut walk = Walk { shapes, violations: Vec::new(), count: 0, listed_bytes: 0 };
    walk.check(root, value, "", false)?;
    match walk.count {
        0 => Ok(()),
        n => {
            let noun = if n == 1 { "error" } else { "errors" };
            let mut listed = walk.violations.join("; ");
            if walk.violations.len() < n {
                listed.push_str("; ...");
            }
            Err(Invalid::Constraint(format!("{n} validation {noun} detected: {listed}")))
        }
    }
}

struct Walk {
    shapes: &'static [Shape],
    /// The violations listed in the message (the first ones, up to [`LISTED_BYTES`]).
    violations: Vec<String>,
    /// All violations found.
    count: usize,
    listed_bytes: usize,
}

/// The first `limit` characters of `text`, with `...` when something was cut.
fn excerpt(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn type_error(path: &str, expected: &str) -> Invalid {
    let at = if path.is_empty() { "the request body".to_owned() } else { format!("'{path}'") };
    Invalid::Serialization(format!("Expected {expected} at {at}"))
}

impl Walk {
    fn push(&mut self, text: String) {
        self.count += 1;
        if self.listed_bytes < LISTED_BYTES {
            self.listed_bytes += text.len();
            self.violations.push(text);
        }
    }

    /// `hidden`: the value is sensitive or inside a sensitive shape, and is not shown.
    fn violation(&mut self, hidden: bool, shown: Option<&str>, path: &str, constraint: &str) {
        let value = match (hidden, shown) {
            (false, Some(text)) => format!("Value '{}' at '{path}'", excerpt(text, SHOWN_CHARS)),
            _ => format!("Value at '{path}'"),
        };
        self.push(format!("{value} failed to satisfy constraint: {constraint}"));
    }

    /// Checks `value` against shape `r` at `path`. `inside_sensitive`: an enclosing shape is
    /// sensitive, so `path` is already that shape's path and stays so below it.
    fn check(&mut self, r: ShapeRef, value: &Value, path: &str, inside_sensitive: bool) -> Result<(), Invalid> {
        let shapes = self.shapes;
        let Some(shape) = shapes.get(usize::from(r)) else {
            return Err(Invalid::Serialization(format!("unknown shape {r}")));
        };
        let hidden = inside_sensitive || shape.sensitive;
        // Below a sensitive shape, member names and map keys (client data) stay out of the path.
        let below = |name: &str| if hidden { path.to_owned() } else { join(path, name) };
        match &shape.kind {
            Kind::Structure(members) => {
                let Value::Object(map) = value else {
                    return Err(type_error(path, "an object"));
                };
                for m in members.iter() {
                    let member_path = below(m.path);
                    match map.get(m.name) {
                        None | Some(Value::Null) => {
                            if m.required {
                                self.push(format!(
                                    "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                                ));
                            }
                        }
                        Some(v) => self.check(m.shape, v, &member_path, hidden)?,
                    }
                }
            }
            Kind::List { member, min, max } => {
                let Value::Array(items) = value else {
                    return Err(type_error(path, "a list"));
                };
                self.length(hidden, items.len() as u64, *min, *max, None, path);
                for (i, item) in items.iter().enumerate() {
                    if !item.is_null() {
                        self.check(*member, item, &below(&format!("{}.member", i + 1)), hidden)?;
                    }
                }
            }
            Kind::Map { key, value: val, min, max } => {
                let Value::Object(map) = value else {
                    return Err(type_error(path, "a map"));
                };
                self.length(hidden, map.len() as u64, *min, *max, None, path);
                for (k, v) in map {
                    self.check(*key, &Value::String(k.clone()), path, hidden)?;
                    if !v.is_null() {
                        self.check(*val, v, &below(&excerpt(k, KEY_CHARS)), hidden)?;
                    }
                }
            }
            Kind::String { min, max, pattern, values } => {
                let Value::String(text) = value else {
                    return Err(type_error(path, "a string"));
                };
                let len = text.chars().count() as u64;
                self.length(hidden, len, *min, *max, Some(text), path);
                if !values.is_empty() && !values.contains(&text.as_str()) {
                    let set = values.join(", ");
                    self.violation(hidden, Some(text), path, &format!("Member must satisfy enum value set: [{set}]"));
                }
                if let Some(index) = pattern {
                    if !pattern_matches(*index, text) {
                        let java = PATTERNS.get(*index).map(|p| p.0).unwrap_or_default();
                        self.violation(
                            hidden,
                            Some(text),
                            path,
                            &format!("Member must satisfy regular expression pattern: {java}"),
                        );
                    }
                }
            }
            Kind::Integer { min, max } => {
                let Some(n) = value.as_i64() else {
                    return Err(type_error(path, "an integer"));
                };
                if let Some(min) = min {
                    if n < *min {
                        let c = format!("Member must have value greater than or equal to {min}");
                        self.violation(hidden, Some(&n.to_string()), path, &c);
                    }
                }
                if let Some(max) = max {
                    if n > *max {
                        let c = format!("Member must have value less than or equal to {max}");
                        self.violation(hidden, Some(&n.to_string()), path, &c);
                    }
                }
            }
            Kind::Boolean => {
                if !value.is_boolean() {
                    return Err(type_error(path, "a boolean"));
                }
            }
            Kind::Double | Kind::Timestamp => {
                if !value.is_number() {
                    return Err(type_error(path, "a number"));
                }
            }
            Kind::Blob { .. } => {
                if !value.is_string() {
                    return Err(type_error(path, "a base64 string"));
                }
            }
            Kind::Document => {}
        }
        Ok(())
    }

    fn length(&mut self, hidden: bool, len: u64, min: Option<u64>, max: Option<u64>, shown: Option<&str>, path: &str) {
        if let Some(min) = min {
            if len < min {
                let c = format!("Member must have length greater than or equal to {min}");
                self.violation(hidden, shown, path, &c);
            }
        }
        if let Some(max) = max {
            if len > max {
                let c = format!("Member must have length less than or equal to {max}");
                self.violation(hidden, shown, path, &c);
            }
        }
    }
}

/// Compiled patterns, each built on first use (start-up stays fast). A pattern the regex
/// crate cannot express (Java look-behind) is not enforced; `unenforced_patterns` lists them.
fn compiled(index: usize) -> Option<&'static Regex> {
    static CACHE: OnceLock<Vec<OnceLock<Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| PATTERNS.iter().map(|_| OnceLock::new()).collect());
    let (_, rust) = PATTERNS.get(index)?;
    cache.get(index)?.get_or_init(|| Regex::new(&format!("^(?:{rust})$")).ok()).as_ref()
}

fn pattern_matches(index: usize, text: &str) -> bool {
    compiled(index).is_none_or(|re| re.is_match(text))
}

/// Model patterns that are not enforced because the regex crate lacks the construct.
pub fn unenforced_patterns() -> Vec<&'static str> {
    (0..PATTERNS.len()).filter(|i| compiled(*i).is_none()).filter_map(|i| PATTERNS.get(i).map(|p| p.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Operation, Service};
    use serde_json::json;

    fn input_of(name: &str) -> (&'static [Shape], ShapeRef) {
        let op = Operation::find(Service::CognitoIdp, name).expect("operation");
        (Service::CognitoIdp.shapes(), op.input.expect("input"))
    }

    #[test]
    fn missing_required_member_is_reported_like_aws() {
        let (shapes, root) = input_of("DescribeUserPool");
        let err = validate(shapes, root, &json!({})).unwrap_err();
        assert_eq!(
            err,
            Invalid::Constraint(
                "1 validation error detected: Value null at 'userPoolId' failed to satisfy constraint: Member must not be null".into()
            )
        );
    }

    #[test]
    fn pattern_and_length_violations_are_counted() {
        let (shapes, root) = input_of("DescribeUserPool");
        let err = validate(shapes, root, &json!({"UserPoolId": "no-underscore"})).unwrap_err();
        let Invalid::Constraint(msg) = err else { panic!("expected constraint") };
        assert!(msg.starts_with("1 validation error detected: Value 'no-underscore' at 'userPoolId'"), "{msg}");
        assert!(msg.ends_with("Member must satisfy regular expression pattern: [\\w-]+_[0-9a-zA-Z]+"), "{msg}");
        let long = "x".repeat(129);
        let (shapes, root) = input_of("CreateUserPool");
        let err = validate(shapes, root, &json!({"PoolName": long, "MfaConfiguration": "MAYBE"})).unwrap_err();
        let Invalid::Constraint(msg) = err else { panic!("expected constraint") };
        assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
        assert!(msg.contains("Member must satisfy enum value set: [OFF, ON, OPTIONAL]"), "{msg}");
    }

    #[test]
    fn wrong_json_type_is_a_serialization_error() {
        let (shapes, root) = input_of("DescribeUserPool");
        assert!(matches!(validate(shapes, root, &json!({"UserPoolId": 5})), Err(Invalid::Serialization(_))));
        assert!(matches!(validate(shapes, root, &json!([])), Err(Invalid::Serialization(_))));
    }

    #[test]
    fn sensitive_values_are_not_echoed() {
        let (shapes, root) = input_of("SignUp");
        let body = json!({"ClientId": "abc", "Username": "u", "Password": "has space"});
        let Err(Invalid::Constraint(msg)) = validate(shapes, root, &body) else { panic!("expected error") };
        assert!(!msg.contains("has space"), "{msg}");
        assert!(msg.contains("Value at 'password'"), "{msg}");
    }

    #[test]
    fn values_inside_sensitive_maps_are_not_echoed() {
        // AuthParametersType is a sensitive map of plain StringType values (max 131072).
        let (shapes, root) = input_of("InitiateAuth");
        let secret = format!("S3cretValue{}", "x".repeat(200_000));
        let body = json!({"ClientId": "abc", "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": {"PASSWORD": secret}});
        let Err(Invalid::Constraint(msg)) = validate(shapes, root, &body) else { panic!("expected error") };
        assert_eq!(
            msg,
            "1 validation error detected: Value at 'authParameters' failed to satisfy constraint: \
             Member must have length less than or equal to 131072"
        );
        // A key inside a sensitive map is not shown either, and nor is a wrongly typed value.
        let body = json!({"ClientId": "abc", "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": {"S3cretKey": 5}});
        let Err(Invalid::Serialization(msg)) = validate(shapes, root, &body) else { panic!("expected error") };
        assert_eq!(msg, "Expected a string at 'authParameters'");
        // Members of a sensitive structure (UserContextDataType) are reported at the structure.
        let body = json!({"ClientId": "abc", "AuthFlow": "USER_PASSWORD_AUTH", "UserContextData": {"IpAddress": 7}});
        let Err(Invalid::Serialization(msg)) = validate(shapes, root, &body) else { panic!("expected error") };
        assert_eq!(msg, "Expected a string at 'userContextData'");
    }

    #[test]
    fn long_values_keys_and_lists_are_truncated() {
        let (shapes, root) = input_of("DescribeUserPool");
        let long = format!("{}-no-underscore", "a".repeat(100_000));
        let Err(Invalid::Constraint(msg)) = validate(shapes, root, &json!({"UserPoolId": long})) else {
            panic!("expected error")
        };
        assert!(msg.len() < 1024, "{} bytes", msg.len());
        assert!(msg.contains(&format!("Value '{}...' at 'userPoolId'", "a".repeat(256))), "{msg}");
        // A non-sensitive map (ClientMetadataType) shows its key in the path, truncated.
        let (shapes, root) = input_of("InitiateAuth");
        let key = "k".repeat(10_000);
        let body = json!({"ClientId": "abc", "AuthFlow": "USER_PASSWORD_AUTH", "ClientMetadata": {key: 5}});
        let Err(Invalid::Serialization(msg)) = validate(shapes, root, &body) else { panic!("expected error") };
        assert_eq!(msg, format!("Expected a string at 'clientMetadata.{}...'", "k".repeat(64)));
        // Thousands of violations (two per empty Name) are all counted; only the first few are listed.
        let (shapes, root) = input_of("AdminCreateUser");
        let attrs: Vec<_> = (0..5000).map(|_| json!({"Name": ""})).collect();
        let body = json!({"UserPoolId": "us-east-1_abc", "Username": "u", "UserAttributes": attrs});
        let Err(Invalid::Constraint(msg)) = validate(shapes, root, &body) else { panic!("expected error") };
        assert!(msg.starts_with("10000 validation errors detected: "), "{}", &msg[..80]);
        assert!(msg.ends_with("; ..."), "{msg}");
        assert!(msg.len() < 4096, "{} bytes", msg.len());
    }

    #[test]
    fn ascii_word_class_matches_java() {
        // Java's \w is ASCII-only: a user pool id with a non-ASCII letter is invalid.
        let (shapes, root) = input_of("DescribeUserPool");
        assert!(validate(shapes, root, &json!({"UserPoolId": "us-east-1_abcé"})).is_err());
        assert!(validate(shapes, root, &json!({"UserPoolId": "us-east-1_abc"})).is_ok());
    }

    #[test]
    fn only_known_patterns_are_unenforced() {
        assert_eq!(unenforced_patterns(), vec!["^[0-9A-Za-z\\.\\-_]*(?<!\\.)$"]);
    }
}
