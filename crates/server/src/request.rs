//! Request bodies of the control API, deserialized directly into the
//! components' `Config`s: `{"maxSizeMb": 10, "flags": ["a", "b"]}` is a
//! capture config as the command line builds one from
//! `--max-size-mb 10 --flags a --flags b`. A config's fields are exactly
//! what the API accepts: options that name files or change where data goes
//! on this host (`report`, `checkpoint`, `live`, ...) are not fields of the
//! configs, so a body that sets one is refused as unknown.
//!
//! Errors name the option both as the JSON field and as the flag:
//! `unknown option "report"; the options here are: ...`, or
//! `invalid value for "speed" (--speed): ...`.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};

/// The body of `POST /api/v1/captures`: `tape_capture`'s capture config.
pub type CaptureOptions = tape_capture::CaptureSettings;

/// The body of `POST /api/v1/replays`: `tape_replay`'s replay config.
pub type ReplayOptions = tape_replay::ReplayConfig;

/// The body of `POST /api/v1/seeds`: `tape_seed`'s seed config.
pub type SeedOptions = tape_seed::SeedConfig;

/// The body of `POST /api/v1/exports`: `tape_files`'s export config. Its
/// `out` is an `s3://bucket/prefix` URL or a path relative to serve's
/// export directory.
pub type ExportOptions = tape_files::ExportConfig;

/// The body of `POST /api/v1/compares`: `tape_compare`'s comparison
/// config; its `replayReport` is the replay report's JSON object.
pub type CompareOptions = tape_compare::CompareConfig;

/// A request body that is not a valid set of options; the message names
/// the option.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionsError(pub String);

/// The fields a config `T` takes (its serde names, in declaration order).
///
/// Read from the derived `Deserialize`: a deserializer that only asks for
/// the struct's field list. Empty for a type that is not a plain struct.
pub fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut found: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames { found: &mut found });
    found
}

/// Asks a derived `Deserialize` for its field names, then stops it.
struct FieldNames<'a> {
    found: &'a mut &'static [&'static str],
}

/// Ends [`FieldNames`]'s deserialization.
#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names only")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.found = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// `maxSizeMb` → `max-size-mb`: the flag of an option.
fn kebab(name: &str) -> String {
    let mut flag = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    flag
}

/// The config `T` of `body`: a JSON object of its options, or null for
/// none (every option at its default).
pub fn options<T: DeserializeOwned>(body: &Value) -> Result<T, OptionsError> {
    let allowed = fields::<T>();
    let object = match body {
        Value::Null => Map::new(),
        Value::Object(object) => object.clone(),
        _ => return Err(OptionsError("the request body must be a JSON object of options".to_owned())),
    };
    // A config whose fields cannot be read (a flattened one) is left to its
    // own `deny_unknown_fields`.
    let unknown = |name: &&String| !allowed.is_empty() && !allowed.contains(&name.as_str());
    if let Some(name) = object.keys().find(unknown) {
        return Err(OptionsError(format!("unknown option {name:?}; the options here are: {}", allowed.join(", "))));
    }
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|error| {
        let message = error.inner().to_string();
        let Some(name) = error.path().iter().find_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        }) else {
            return OptionsError(message);
        };
        let flag = kebab(&name);
        match message.strip_prefix("expected ") {
            // The shape of the value is wrong: say what it must be.
            Some(shape) => OptionsError(format!("option {name:?} (--{flag}) must be {shape}")),
            None => OptionsError(format!("invalid value for {name:?} (--{flag}): {message}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// A config in the shape of the components' configs.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Config {
        #[serde(default, deserialize_with = "tape_session::config::parsed")]
        max_size_mb: Option<u64>,
        #[serde(rename = "loop", default, deserialize_with = "tape_session::config::switch")]
        looping: bool,
    }

    #[test]
    fn the_fields_are_read_from_the_derived_deserialize() {
        assert_eq!(fields::<Config>(), ["maxSizeMb", "loop"]);
        assert!(fields::<u32>().is_empty());
        let config: Config = options(&json!({"maxSizeMb": 2, "loop": true})).unwrap();
        assert_eq!((config.max_size_mb, config.looping), (Some(2), true));
    }

    #[test]
    fn options_are_the_components_configs() {
        let capture: CaptureOptions =
            options(&json!({"sessionId": "c-1", "flags": ["a", "b"], "maxSizeMb": 10, "durable": true})).unwrap();
        assert_eq!(capture.session_id.unwrap().as_str(), "c-1");
        assert_eq!(capture.flags, ["a", "b"]);
        assert_eq!(capture.max_size_mb, Some(10));
        assert!(capture.durable);
        let replay: ReplayOptions =
            options(&json!({"session": "auto", "strategy": "largest", "speed": "max", "loop": false})).unwrap();
        assert!(!replay.looping);
        let seed: SeedOptions = options(&Value::Null).unwrap();
        assert_eq!(seed.pattern, "basic-topology");
    }

    #[test]
    fn bad_options_are_named() {
        for (body, expected) in [
            (json!({"store": "/tmp"}), "unknown option \"store\"; the options here are: sessionId, description,"),
            (json!({"report": "/etc/passwd"}), "unknown option \"report\""),
            (json!({"maxSizeMb": "ten"}), "invalid value for \"maxSizeMb\" (--max-size-mb): "),
            (json!({"sessionId": "a'b"}), "invalid session id"),
            (json!({"flags": [{"x": 1}]}), "option \"flags\" (--flags) must be a string"),
            (json!({"durable": "yes"}), "(--durable) must be true or false"),
            (json!([1]), "the request body must be a JSON object of options"),
        ] {
            let error = options::<CaptureOptions>(&body).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains("Usage"), "{error}");
        }
        let error = options::<ReplayOptions>(&json!({"speed": "0"})).unwrap_err().to_string();
        assert!(error.starts_with("invalid value for \"speed\" (--speed): "), "{error}");
        let error = options::<ReplayOptions>(&json!({"session": "a b"})).unwrap_err().to_string();
        assert!(error.contains("--session"), "{error}");
        let error = options::<ReplayOptions>(&json!({"report": "/etc/x"})).unwrap_err().to_string();
        assert!(error.starts_with("unknown option \"report\"; the options here are: session, "), "{error}");
        let error = options::<SeedOptions>(&json!({"live": true})).unwrap_err().to_string();
        assert!(error.starts_with("unknown option \"live\""), "{error}");
    }
}
