use std::fmt;
use std::str::FromStr;

/// The longest session id accepted, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// A validated session id: 1 to 128 ASCII letters, digits, `.`, `_` or `-`,
/// and neither `.` nor `..`, so an id is always safe as one path segment
/// and as one S3 key segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

/// Why a string is not a valid session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session id {id:?}: {reason}")]
pub struct InvalidSessionId {
    /// The refused input.
    pub id: String,
    /// What rule it broke.
    pub reason: &'static str,
}

impl SessionId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidSessionId> {
        let id = id.into();
        let refuse = |reason| Err(InvalidSessionId { id: id.clone(), reason });
        if id.is_empty() {
            return refuse("it is empty");
        }
        if id.len() > MAX_SESSION_ID_LEN {
            return refuse("it is longer than 128 characters");
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return refuse("only letters, digits, '.', '_' and '-' are allowed");
        }
        if id == "." || id == ".." {
            return refuse("'.' and '..' are not session ids");
        }
        Ok(SessionId(id))
    }

    /// A new random id of the form `<prefix>-YYYYMMDD-HHMMSS-<8 hex digits>`.
    pub fn generate(prefix: &str, now: crate::Timestamp, random: u32) -> Self {
        let stamp = now.to_datetime().format("%Y%m%d-%H%M%S");
        SessionId::new(format!("{prefix}-{stamp}-{random:08x}"))
            .unwrap_or_else(|_| SessionId(format!("session-{stamp}-{random:08x}")))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        SessionId::new(id)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        SessionId::new(id).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for id in ["a", "abc-123-def-456", "seed_2026.11.22", "A.b-C_d", &"x".repeat(128)] {
            assert_eq!(SessionId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for id in ["", ".", "..", "../etc", "a/b", "a\\b", "a b", "é", "a\0", "x'; DROP", &"x".repeat(129)] {
            assert!(SessionId::new(id).is_err(), "{id:?} was accepted");
        }
    }

    #[test]
    fn generated_ids_are_valid() {
        let id = SessionId::generate("capture", crate::Timestamp::from_unix_nanos(1_767_225_600_000_000_000), 0xabc);
        assert_eq!(id.as_str(), "capture-20260101-000000-00000abc");
    }
}
