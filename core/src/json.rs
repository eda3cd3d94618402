//! Strict JSON for untrusted input: duplicate object keys are an error at any depth.
//!
//! `serde_json` keeps the last of two equal keys, which lets two parsers of the same
//! token disagree about its contents. JOSE allows a receiver to reject such input
//! ([RFC 7515 §5.2], [RFC 7519 §4]); core always does.
//!
//! [RFC 7515 §5.2]: https://www.rfc-editor.org/rfc/rfc7515#section-5.2
//! [RFC 7519 §4]: https://www.rfc-editor.org/rfc/rfc7519#section-4

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why strict JSON parsing failed. The message names no part of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The bytes were not valid JSON, or valid JSON with a duplicate key.
    #[error("malformed json")]
    Malformed,
    /// The top-level value was not a JSON object.
    #[error("json value is not an object")]
    NotAnObject,
}

/// Parses a JSON object, refusing duplicate keys at every depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let StrictValue(value) = serde_json::from_slice(bytes).map_err(|_| JsonError::Malformed)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// The string member `name` of an object: `None` when absent, `Err(name)` when
/// present with another JSON type.
pub(crate) fn optional_str<'a>(
    map: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, &'static str> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(name),
    }
}

/// A `serde_json::Value` whose deserializer fails on duplicate object keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x",-2,1.5],"c":{"d":{}}}"#)
            .expect("valid object");
        assert_eq!(map["a"], 1);
        assert_eq!(map["b"][4], 1.5);
        assert!(map["c"]["d"].is_object());
    }

    #[test]
    fn rejects_duplicate_keys_at_top_level() {
        assert_eq!(parse_object(br#"{"a":1,"a":1}"#), Err(JsonError::Malformed));
    }

    #[test]
    fn rejects_duplicate_keys_when_nested() {
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":2}}"#),
            Err(JsonError::Malformed)
        );
        assert_eq!(
            parse_object(br#"{"a":[{"b":1,"b":2}]}"#),
            Err(JsonError::Malformed)
        );
    }

    #[test]
    fn escaped_spellings_of_one_key_are_duplicates() {
        assert_eq!(
            parse_object(br#"{"alg":1,"\u0061lg":2}"#),
            Err(JsonError::Malformed)
        );
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"\"x\""), Err(JsonError::NotAnObject));
        assert_eq!(parse_object(b"{"), Err(JsonError::Malformed));
        assert_eq!(parse_object(b"{} x"), Err(JsonError::Malformed));
        assert_eq!(parse_object(b""), Err(JsonError::Malformed));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut deep = "[".repeat(10_000);
        deep.insert_str(0, "{\"a\":");
        assert_eq!(parse_object(deep.as_bytes()), Err(JsonError::Malformed));
    }
}
