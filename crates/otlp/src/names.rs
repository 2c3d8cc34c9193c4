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
