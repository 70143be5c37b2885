//! A JSON object whose member values are kept as their original text.
//!
//! Parsing a request into a [`RawObject`] validates the whole body as JSON but only
//! allocates one small string per top-level member; re-serialising it copies the
//! untouched members verbatim. This is how the gateway rewrites the members it must
//! (`model`, and `stream_options` of a logged stream) and nothing else, at a fraction of the cost of a full parse into `serde_json::Value`.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::RawValue;

/// Top-level members in their original order, values unparsed.
pub type RawObject = IndexMap<String, Box<RawValue>>;

/// Parses `body` as a JSON object. Fails on anything else (an array, a number,
/// malformed JSON).
pub fn parse_object(body: &[u8]) -> Result<RawObject, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Serialises `value` as a raw JSON member value.
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    // Serialising our own plain data types cannot fail; fall back to `null` rather
    // than panic if it ever did.
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// Serialises the object back to compact JSON bytes.
pub fn to_vec(object: &RawObject) -> Vec<u8> {
    write(object, None)
}

/// Serialises the object with member `key` set to `value` (added last when absent),
/// without copying the object first: a request carrying megabytes of inline images
/// is copied once, into the output.
pub fn to_vec_replacing(object: &RawObject, key: &str, value: &RawValue) -> Vec<u8> {
    write(object, Some((key, value)))
}

fn write(object: &RawObject, replace: Option<(&str, &RawValue)>) -> Vec<u8> {
    let len: usize = object
        .iter()
        .map(|(k, v)| k.len() + v.get().len() + 4)
        .sum::<usize>()
        + replace.map_or(0, |(k, v)| k.len() + v.get().len() + 4)
        + 2;
    let mut out = Vec::with_capacity(len);
    out.push(b'{');
    let mut replaced = false;
    for (k, v) in object {
        let v = match replace {
            Some((rk, rv)) if rk == k => {
                replaced = true;
                rv
            }
            _ => &**v,
        };
        member(&mut out, k, v);
    }
    if let (Some((k, v)), false) = (replace, replaced) {
        member(&mut out, k, v);
    }
    out.push(b'}');
    out
}

fn member(out: &mut Vec<u8>, key: &str, value: &RawValue) {
    if out.len() > 1 {
        out.push(b',');
    }
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    out.extend_from_slice(value.get().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_members_verbatim_and_in_order() {
        let body = br#"{"z": [1, 2 ,3], "model":"a","seed":7,"x":{"deep":{"k":"\u00e9"}}}"#;
        let obj = parse_object(body).unwrap();
        let out = String::from_utf8(to_vec_replacing(&obj, "model", &to_raw("b"))).unwrap();
        assert_eq!(
            out,
            r#"{"z":[1, 2 ,3],"model":"b","seed":7,"x":{"deep":{"k":"\u00e9"}}}"#
        );
    }

    #[test]
    fn replacing_adds_a_missing_member_and_escapes_keys() {
        let obj = parse_object(br#"{"a\"b":1}"#).unwrap();
        let out = to_vec_replacing(&obj, "model", &to_raw("m"));
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a\"b":1,"model":"m"}"#);
        assert_eq!(to_vec(&RawObject::new()), b"{}");
    }

    #[test]
    fn rejects_non_objects_and_malformed_json() {
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{\"a\":").is_err());
        assert!(parse_object(b"").is_err());
    }
}
