//! Enums named by fixed strings.

/// Gives an enum of unit variants its fixed names: a `pub fn as_str`
/// (documented by the doc comment given first), a `pub fn from_name` that
/// takes a name exactly as `as_str` gives it, and a `Display` that pads the
/// name.
///
/// ```
/// #[derive(Clone, Copy)]
/// enum Colour { Red, Dark }
/// tape_otlp::named_enum! {
///     /// `red` or `dark-blue`.
///     Colour { Red => "red", Dark => "dark-blue" }
/// }
/// assert_eq!(Colour::Dark.to_string(), "dark-blue");
/// assert!(matches!(Colour::from_name("red"), Some(Colour::Red)));
/// ```
#[macro_export]
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            $(#[$doc])*
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant named exactly `name` (as [`Self::as_str`] gives it), if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

/// Serializes a type as the string its `Display` writes and, with
/// `Deserialize` given too, deserializes it from a string by its `FromStr`
/// (whose error is the message).
///
/// ```
/// struct Port(u16);
/// impl std::fmt::Display for Port {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, ":{}", self.0)
///     }
/// }
/// impl std::str::FromStr for Port {
///     type Err = std::num::ParseIntError;
///     fn from_str(text: &str) -> Result<Self, Self::Err> {
///         text.trim_start_matches(':').parse().map(Port)
///     }
/// }
/// tape_otlp::serde_as_text!(Port: Serialize, Deserialize);
/// assert_eq!(serde_json::to_string(&Port(80)).unwrap(), r#"":80""#);
/// assert_eq!(serde_json::from_str::<Port>(r#"":443""#).unwrap().0, 443);
/// ```
#[macro_export]
macro_rules! serde_as_text {
    ($name:ty: Serialize) => {
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
    ($name:ty: Serialize, Deserialize) => {
        $crate::serde_as_text!($name: Serialize);

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
