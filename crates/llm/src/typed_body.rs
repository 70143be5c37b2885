//! Reading a client's JSON body into typed structs, strictly: an error names the
//! field it is about (`messages[2].content[0].source`), and an object field must
//! be an object. serde reads a struct from a JSON array as well (its fields in
//! order), so `"stream_options": [true]` or `"metadata": []` would silently pass
//! as an object; here they are refused.
//!
//! How: the body is read as a `Value`, the type from it (with the path of the
//! first error), and the typed result written back: wherever the result has an
//! object and the body an array, the body gave an array for an object.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a body cannot be read, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid JSON body: {0}")]
    Json(String),
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

impl BodyError {
    /// An error about the field at `path` (`.` for the value itself).
    pub(crate) fn at(path: &str, message: &str) -> Self {
        Self::Field {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }

    /// This error, of a value read inside a larger one by a hand-written
    /// `Deserialize`, as that deserializer's error: the path inside the value goes
    /// into the message, and the caller's path tracking adds the value's own.
    pub(crate) fn nested<E: serde::de::Error>(self) -> E {
        match self {
            Self::Field { path, message } if path != "." => E::custom(format!("{path}: {message}")),
            Self::Field { message, .. } | Self::Json(message) => E::custom(message),
        }
    }
}

/// `T` from a JSON body, strictly (see the module's header).
pub fn from_slice<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, BodyError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| BodyError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(BodyError::Json("the body must be a JSON object".into()));
    }
    let typed: T = serde_path_to_error::deserialize(&value).map_err(|e| BodyError::Field {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    let written = serde_json::to_value(&typed).map_err(|e| BodyError::Json(e.to_string()))?;
    let mut path = String::new();
    array_for_object(&value, &written, &mut path).map_or(Ok(typed), |path| {
        Err(BodyError::Field {
            path,
            message: "expected an object, not an array".into(),
        })
    })
}

/// `T` from an already parsed JSON value, an error naming the field inside it
/// (`.` for the value itself). Unlike [`from_slice`], an array given for an object
/// is not looked for: meant for types that read only from objects (each keeps its
/// unknown members in a flattened map, which serde reads from objects alone).
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, BodyError> {
    serde_path_to_error::deserialize(value).map_err(|e| BodyError::Field {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// A path inside the value at `prefix`, as one path: `tools` and `[0].name` make
/// `tools[0].name`; `.` (the value itself) makes `prefix`.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match path {
        "." | "" => prefix.to_owned(),
        p if p.starts_with('[') || prefix.is_empty() => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    }
}

/// The first path where `given` has an array and `read` an object.
fn array_for_object(given: &Value, read: &Value, path: &mut String) -> Option<String> {
    match (given, read) {
        (Value::Array(_), Value::Object(_)) => Some(if path.is_empty() {
            ".".into()
        } else {
            path.clone()
        }),
        (Value::Object(given), Value::Object(read)) => {
            for (key, read) in read {
                if let Some(given) = given.get(key) {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    let found = array_for_object(given, read, path);
                    path.truncate(len);
                    if found.is_some() {
                        return found;
                    }
                }
            }
            None
        }
        (Value::Array(given), Value::Array(read)) => {
            for (i, (given, read)) in given.iter().zip(read).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = array_for_object(given, read, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Options {
        #[serde(default)]
        include_usage: Option<bool>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Body {
        model: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_options: Option<Options>,
        #[serde(default)]
        list: Vec<Options>,
    }

    fn read(v: Value) -> Result<Body, BodyError> {
        from_slice(v.to_string().as_bytes())
    }

    #[test]
    fn objects_read_from_arrays_are_refused_with_their_path() {
        assert!(read(json!({"model": "m", "stream_options": {"include_usage": true}})).is_ok());
        for (body, path) in [
            (
                json!({"model": "m", "stream_options": []}),
                "stream_options",
            ),
            (
                json!({"model": "m", "stream_options": [true]}),
                "stream_options",
            ),
            (json!({"model": "m", "list": [{}, [false]]}), "list[1]"),
        ] {
            match read(body.clone()) {
                Err(BodyError::Field { path: p, .. }) => assert_eq!(p, path, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn values_read_with_their_paths() {
        let Err(BodyError::Field { path, .. }) =
            from_value::<Body>(json!({"model": "m", "list": [{}, {"include_usage": 3}]}))
        else {
            panic!()
        };
        assert_eq!(path, "list[1].include_usage");
        assert_eq!(join_path("tools", &path), "tools.list[1].include_usage");
        assert_eq!(join_path("input", "[2].content"), "input[2].content");
        assert_eq!(join_path("input[0]", "."), "input[0]");
    }

    #[test]
    fn type_errors_name_their_field_and_arrays_are_no_body() {
        let Err(BodyError::Field { path, .. }) = read(json!({"model": 7})) else {
            panic!()
        };
        assert_eq!(path, "model");
        assert!(matches!(
            from_slice::<Body>(b"[\"m\"]"),
            Err(BodyError::Json(_))
        ));
        assert!(matches!(from_slice::<Body>(b"{"), Err(BodyError::Json(_))));
    }
}
