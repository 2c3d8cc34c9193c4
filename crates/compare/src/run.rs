//! The comparison's driver: both sessions read (the expected one through
//! the replay's selection, passes and id remapping), their items
//! partitioned (in memory, or on disk when they are larger than memory),
//! and each partition matched.

use std::path::Path;

use serde::Serialize;
use tape_session::SessionStore;

use crate::{Comparison, Error, ValidCompareConfig};

/// How far a comparison got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareProgress {
    /// Records of both sessions read (on the expected side, once per
    /// pass).
    pub records_done: u64,
    /// Records to read.
    pub records_total: u64,
    /// Items read of both sessions.
    pub items_done: u64,
    /// Partitions matched.
    pub partitions_done: u32,
    /// Partitions in all.
    pub partitions_total: u32,
}

impl ValidCompareConfig {
    /// Compares the two sessions of `store`. Partition files, when needed,
    /// go into a new directory under `temp_dir` that is removed when the
    /// comparison ends (also when it fails or its future is dropped).
    /// `progress` is called as records are read and partitions matched.
    pub async fn run(
        &self,
        store: &dyn SessionStore,
        temp_dir: &Path,
        progress: &(dyn Fn(CompareProgress) + Send + Sync),
    ) -> Result<Comparison, Error> {
        let _ = (store, temp_dir, progress);
        todo!("the driver")
    }
}
