//! The patterns that ship with otlp-tape, embedded from `patterns/`.

/// Every built-in pattern: its name and its YAML text.
pub const BUILTIN_PATTERNS: [(&str, &str); 5] = [
    ("basic-topology", include_str!("../../../patterns/basic-topology.yaml")),
    ("payment-failure", include_str!("../../../patterns/payment-failure.yaml")),
    ("high-load", include_str!("../../../patterns/high-load.yaml")),
    ("complex-topology", include_str!("../../../patterns/complex-topology.yaml")),
    ("training-phases", include_str!("../../../patterns/training-phases.yaml")),
];

/// The YAML text of the built-in pattern `name`.
pub fn builtin_pattern(name: &str) -> Option<&'static str> {
    BUILTIN_PATTERNS.iter().find(|(known, _)| *known == name).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pattern;

    #[test]
    fn every_builtin_pattern_reads_and_is_named_after_its_file() {
        for (name, text) in BUILTIN_PATTERNS {
            let pattern = Pattern::parse(name, text).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(pattern.name, name);
        }
    }
}
