//! The JSON forms of components' `Config`s, for `#[serde(deserialize_with)]`.
//!
//! A `Config` is written by people (in a request to the control API, in a
//! file) as well as built by the command line, so its fields take the forms
//! a flag takes: a scalar is a string or a number (`"speed": "max"`,
//! `"speed": 10`, `"duration": "90s"`, `"duration": 90`), a list is an
//! array or one comma-separated string, a switch is a boolean, and `null`
//! is the same as leaving the field out. Values are parsed by the type's
//! [`FromStr`], the very parser of its flag, so both fronts accept and
//! refuse the same values with the same words.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! #[serde(rename_all = "camelCase", deny_unknown_fields)]
//! struct Config {
//!     #[serde(default, deserialize_with = "tape_session::config::parsed")]
//!     concurrency: Option<u16>,
//!     #[serde(default, deserialize_with = "tape_session::config::duration")]
//!     timeout: Option<u64>,
//!     #[serde(default, deserialize_with = "tape_session::config::list")]
//!     services: Vec<String>,
//!     #[serde(default, deserialize_with = "tape_session::config::switch")]
//!     durable: bool,
//! }
//!
//! let config: Config =
//!     serde_json::from_str(r#"{"concurrency": "8", "timeout": "1m30s", "services": "a,b", "durable": null}"#)
//!         .unwrap();
//! assert_eq!(config.concurrency, Some(8));
//! assert_eq!(config.timeout, Some(90_000_000_000));
//! assert_eq!(config.services, ["a", "b"]);
//! assert!(!config.durable);
//! ```

use std::fmt::Display;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use serde_json::Value;

/// Parses a duration the way the command line does: a bare number is
/// seconds (`90`, `1.5`), otherwise a number and a unit (`250ms`, `10s`,
/// `1m30s`, `2h`); returns nanoseconds.
pub fn parse_duration_flag(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
        crate::parse_duration(&format!("{text}s"))
    } else {
        crate::parse_duration(text)
    }
}

/// A scalar as the text a flag would have been given: a string as it is, a
/// number as JSON writes it; `None` for null.
fn scalar_text<E: serde::de::Error>(value: Value) -> Result<Option<String>, E> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(E::custom("expected a string or a number")),
    }
}

fn parse_text<T, E>(text: &str) -> Result<T, E>
where
    T: FromStr,
    T::Err: Display,
    E: serde::de::Error,
{
    text.parse().map_err(|error: T::Err| E::custom(format!("invalid value {text:?}: {error}")))
}

/// An optional value given as a string or a number and parsed by its
/// [`FromStr`]; null is `None`.
pub fn parsed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    match scalar_text(Value::deserialize(deserializer)?)? {
        None => Ok(None),
        Some(text) => parse_text(&text).map(Some),
    }
}

/// An optional duration (nanoseconds), as [`parse_duration_flag`] reads
/// it; null is `None`.
pub fn duration<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    match scalar_text(Value::deserialize(deserializer)?)? {
        None => Ok(None),
        Some(text) => parse_duration_flag(&text).map(Some).map_err(D::Error::custom),
    }
}

/// A list: an array of strings or numbers, or one string; every item is
/// also split at commas (as a flag with a comma delimiter), and each part is
/// parsed by its [`FromStr`]. Null is the empty list.
pub fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    list_items(deserializer, |text, values| {
        for part in text.split(',') {
            values.push(parse_text(part)?);
        }
        Ok(())
    })
}

/// A list whose items are taken whole (not split at commas), for values
/// that may hold commas themselves, such as `KEY=VALUE` headers. Null is the
/// empty list.
pub fn whole_items<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    list_items(deserializer, |text, values| {
        values.push(parse_text(text)?);
        Ok(())
    })
}

/// The values of a list (an array of strings or numbers, or one string or
/// number): `take` parses the text of each item that is not null, in turn,
/// into the values.
fn list_items<'de, D, T>(
    deserializer: D,
    mut take: impl FnMut(&str, &mut Vec<T>) -> Result<(), D::Error>,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let items = match Value::deserialize(deserializer)? {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut values = Vec::new();
    for item in items {
        let text = scalar_text::<D::Error>(item)
            .map_err(|_| D::Error::custom("expected a string, a number or a list of them"))?;
        if let Some(text) = text {
            take(&text, &mut values)?;
        }
    }
    Ok(values)
}

/// A switch: `true` or `false`; null is `false`.
pub fn switch<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(false),
        Value::Bool(value) => Ok(value),
        _ => Err(D::Error::custom("expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Config {
        #[serde(default, deserialize_with = "super::parsed")]
        count: Option<u16>,
        #[serde(default, deserialize_with = "super::duration")]
        timeout: Option<u64>,
        #[serde(default, deserialize_with = "super::list")]
        names: Vec<String>,
        #[serde(default, deserialize_with = "super::whole_items")]
        headers: Vec<String>,
        #[serde(default, deserialize_with = "super::switch")]
        on: bool,
    }

    fn parse(json: &str) -> Result<Config, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn scalars_are_strings_or_numbers_and_null_is_absent() {
        let config = parse(r#"{"count": 8, "timeout": 90, "names": null, "on": null}"#).unwrap();
        assert_eq!(config.count, Some(8));
        assert_eq!(config.timeout, Some(90_000_000_000));
        assert!(config.names.is_empty());
        assert!(!config.on);
        let config = parse(r#"{"count": "8", "timeout": "250ms", "on": true}"#).unwrap();
        assert_eq!(config.count, Some(8));
        assert_eq!(config.timeout, Some(250_000_000));
        assert!(config.on);
        let config = parse("{}").unwrap();
        assert_eq!((config.count, config.timeout), (None, None));
    }

    #[test]
    fn lists_are_arrays_or_comma_separated() {
        assert_eq!(parse(r#"{"names": "a,b"}"#).unwrap().names, ["a", "b"]);
        assert_eq!(parse(r#"{"names": ["a", "b,c"]}"#).unwrap().names, ["a", "b", "c"]);
        assert_eq!(parse(r#"{"headers": ["a=1,2", "b=3"]}"#).unwrap().headers, ["a=1,2", "b=3"]);
        assert_eq!(parse(r#"{"headers": "a=1"}"#).unwrap().headers, ["a=1"]);
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        for (json, expected) in [
            (r#"{"count": "many"}"#, "invalid value \"many\""),
            (r#"{"count": 70000}"#, "invalid value \"70000\""),
            (r#"{"count": true}"#, "expected a string or a number"),
            (r#"{"timeout": "soon"}"#, "invalid duration"),
            (r#"{"names": [{"x": 1}]}"#, "expected a string, a number or a list of them"),
            (r#"{"on": "yes"}"#, "expected true or false"),
            (r#"{"other": 1}"#, "unknown field `other`"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
