/// One phase of a scenario, as a pattern names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Its name, such as `baseline` or `failure`.
    pub name: String,
    /// Its length at the pattern's default duration, in nanoseconds; for
    /// other durations phases are scaled in proportion.
    pub nominal_nanos: u64,
    /// Feature flags in force during the phase.
    pub flags: Vec<String>,
    /// What happens in it, for people.
    pub description: String,
}

/// A pattern's phases laid out over a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Never empty: `scale` refuses an empty phase list.
    phases: Vec<(Phase, u64, u64)>,
}

/// Phases that cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhaseError {
    /// A pattern without phases.
    #[error("a pattern needs at least one phase")]
    NoPhases,
    /// A phase of no length.
    #[error("phase {0:?} has no duration")]
    Empty(String),
    /// Two phases with one name.
    #[error("two phases are named {0:?}")]
    Duplicate(String),
}

impl Timeline {
    /// Scales `phases` to a session of `total` nanoseconds: each phase gets
    /// its share of `total` in proportion to its nominal length, boundaries
    /// rounded down in exact integer arithmetic, the last ending at `total`.
    pub fn scale(phases: Vec<Phase>, total: u64) -> Result<Self, PhaseError> {
        if phases.is_empty() {
            return Err(PhaseError::NoPhases);
        }
        for (index, phase) in phases.iter().enumerate() {
            if phase.nominal_nanos == 0 {
                return Err(PhaseError::Empty(phase.name.clone()));
            }
            if phases[..index].iter().any(|earlier| earlier.name == phase.name) {
                return Err(PhaseError::Duplicate(phase.name.clone()));
            }
        }
        let nominal: u128 = phases.iter().map(|phase| u128::from(phase.nominal_nanos)).sum();
        let mut cumulative: u128 = 0;
        let mut start = 0;
        let mut laid_out = Vec::with_capacity(phases.len());
        for phase in phases {
            cumulative += u128::from(phase.nominal_nanos);
            let end = u64::try_from(u128::from(total) * cumulative / nominal).unwrap_or(total);
            laid_out.push((phase, start, end));
            start = end;
        }
        Ok(Timeline { phases: laid_out })
    }

    /// Each phase with its start and end offset in nanoseconds; they tile
    /// `0..total` exactly.
    pub fn phases(&self) -> &[(Phase, u64, u64)] {
        &self.phases
    }

    /// The phase in force at `offset` nanoseconds into the session; the
    /// last phase for offsets at or past the end.
    pub fn phase_at(&self, offset: u64) -> &Phase {
        self.phases
            .iter()
            .find(|(_, start, end)| (*start..*end).contains(&offset))
            .or(self.phases.last())
            .map(|(phase, _, _)| phase)
            .expect("scale refuses an empty phase list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, seconds: u64) -> Phase {
        Phase {
            name: name.to_owned(),
            nominal_nanos: seconds * 1_000_000_000,
            flags: Vec::new(),
            description: String::new(),
        }
    }

    fn three() -> Vec<Phase> {
        vec![phase("baseline", 10), phase("failure", 10), phase("rampdown", 10)]
    }

    #[test]
    fn thirty_seconds_is_ten_each_and_sixty_is_twenty_each() {
        let timeline = Timeline::scale(three(), 30_000_000_000).unwrap();
        let bounds: Vec<(u64, u64)> = timeline.phases.iter().map(|(_, s, e)| (*s, *e)).collect();
        assert_eq!(bounds, [(0, 10_000_000_000), (10_000_000_000, 20_000_000_000), (20_000_000_000, 30_000_000_000)]);
        let timeline = Timeline::scale(three(), 60_000_000_000).unwrap();
        assert_eq!(timeline.phases[1].1, 20_000_000_000);
        assert_eq!(timeline.phase_at(39_999_999_999).name, "failure");
        assert_eq!(timeline.phase_at(40_000_000_000).name, "rampdown");
        assert_eq!(timeline.phase_at(u64::MAX).name, "rampdown");
    }

    #[test]
    fn phases_tile_the_session_exactly() {
        for total in [1, 7, 1_000_000_001, 29_999_999_999] {
            let timeline = Timeline::scale(vec![phase("a", 3), phase("b", 7), phase("c", 11)], total).unwrap();
            assert_eq!(timeline.phases[0].1, 0);
            assert_eq!(timeline.phases.last().unwrap().2, total);
            for pair in timeline.phases.windows(2) {
                assert_eq!(pair[0].2, pair[1].1);
            }
        }
    }

    #[test]
    fn bad_phase_lists_are_refused() {
        assert_eq!(Timeline::scale(Vec::new(), 10), Err(PhaseError::NoPhases));
        assert_eq!(Timeline::scale(vec![phase("a", 0)], 10), Err(PhaseError::Empty("a".into())));
        assert_eq!(Timeline::scale(vec![phase("a", 1), phase("a", 2)], 10), Err(PhaseError::Duplicate("a".into())));
    }
}
