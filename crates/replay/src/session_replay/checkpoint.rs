//! `--checkpoint` and `--resume`: a replay's position, kept in a JSON file
//! that is replaced atomically as records are done, so that a replay that
//! stopped (Ctrl-C, a crash, a failure) can go on where it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tape_otlp::wire::Shard;
use tape_session::{SessionId, SessionMetadata, Timestamp};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::error::Error;
use crate::engine::{IdRegeneration, Position, Progress, ProgressSnapshot, Selection};
use crate::timestamps::TimestampMode;

/// The version of the checkpoint format this build writes: 2 added the
/// position's `pending` records (done records may follow them), which a
/// reader of version 1 would skip.
pub const CHECKPOINT_VERSION: u32 = 2;

/// The oldest version this build reads: version 1 has no `pending`.
const OLDEST_READABLE_VERSION: u32 = 1;

/// What a replay must keep to resume the same replay: the selection and
/// the options that change what is sent. (Speed, rate limit, concurrency
/// and the target may change between runs.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fingerprinted {
    /// The signals sent, such as `traces,logs`.
    pub signals: String,
    /// The services sent; empty for every service.
    pub services: Vec<String>,
    /// Records received at or after this.
    pub from: Option<Timestamp>,
    /// Records received before this.
    pub until: Option<Timestamp>,
    /// `none`, `relative` or `current`.
    pub timestamps: String,
    /// `from-second-pass`, `always` or `never`.
    pub ids: String,
    /// The shard, `I/N`; absent for the whole selection (so that the
    /// fingerprint of a replay without one is what it was before shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The schedule's time zero (`--start-at`): the timestamps of a
    /// shard's records depend on it, so a resume must keep it. Absent
    /// without one (so that such a fingerprint is what it was before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Timestamp>,
}

impl Fingerprinted {
    /// What `selection`, `timestamps` and `ids` are.
    pub fn new(selection: &Selection, timestamps: TimestampMode, ids: IdRegeneration) -> Self {
        Fingerprinted {
            signals: selection.signals.to_string(),
            services: selection.services.clone(),
            from: selection.from.map(Timestamp::from_unix_nanos),
            until: selection.until.map(Timestamp::from_unix_nanos),
            timestamps: timestamp_mode_name(timestamps).to_owned(),
            ids: ids_name(ids).to_owned(),
            shard: selection.shard,
            start_at: None,
        }
    }

    /// SHA-256 of the canonical JSON, in hex.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }

    /// What differs from `other`, in words: `signals traces (now traces,logs)`.
    fn differences(&self, now: &Fingerprinted) -> Vec<String> {
        let text = |time: Option<Timestamp>| time.map_or_else(|| "none".to_owned(), |time| time.to_string());
        let list = |services: &[String]| if services.is_empty() { "all".to_owned() } else { services.join(",") };
        let mut differences = Vec::new();
        let mut compare = |name: &str, then: String, now: String| {
            if then != now {
                differences.push(format!("{name} {then} (now {now})"));
            }
        };
        compare("signals", self.signals.clone(), now.signals.clone());
        compare("services", list(&self.services), list(&now.services));
        compare("from", text(self.from), text(now.from));
        compare("until", text(self.until), text(now.until));
        compare("timestamps", self.timestamps.clone(), now.timestamps.clone());
        compare("ids", self.ids.clone(), now.ids.clone());
        let shard = |shard: Option<Shard>| shard.map_or_else(|| "none".to_owned(), |shard| shard.to_string());
        compare("shard", shard(self.shard), shard(now.shard));
        compare("start-at", text(self.start_at), text(now.start_at));
        differences
    }
}

/// The name of a timestamp mode, as `--timestamps` takes it.
pub fn timestamp_mode_name(mode: TimestampMode) -> &'static str {
    match mode {
        TimestampMode::None => "none",
        TimestampMode::Relative => "relative",
        TimestampMode::Current => "current",
    }
}

/// The name of an id regeneration mode, for reports.
pub fn ids_name(ids: IdRegeneration) -> &'static str {
    match ids {
        IdRegeneration::FromSecondPass => "from-second-pass",
        IdRegeneration::Always => "always",
        IdRegeneration::Never => "never",
    }
}

/// The checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The session replayed.
    pub session_id: SessionId,
    /// Its content hash when the checkpoint was written.
    pub content_hash: String,
    /// SHA-256 of `selection`.
    pub fingerprint: String,
    /// The selection and options that a resume must repeat.
    pub selection: Fingerprinted,
    /// The seed of new ids.
    pub id_seed: u64,
    /// Everything before this is done.
    pub position: Position,
    /// Whether the replay got to the end: there is nothing to resume.
    pub complete: bool,
    /// The counts so far, every earlier run included.
    pub counts: ProgressSnapshot,
    /// When it was written.
    pub updated_at: Timestamp,
}

impl Checkpoint {
    /// A checkpoint at the start of a replay of `metadata`.
    pub fn new(metadata: &SessionMetadata, selection: Fingerprinted, id_seed: u64) -> Self {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            session_id: metadata.session_id.clone(),
            content_hash: metadata.content_hash.clone(),
            fingerprint: selection.fingerprint(),
            selection,
            id_seed,
            position: Position::default(),
            complete: false,
            counts: ProgressSnapshot::default(),
            updated_at: Timestamp::default(),
        }
    }

    /// Reads and checks the version of the checkpoint in `path`.
    ///
    /// # Errors
    /// The file is missing, unreadable, not a checkpoint, or of a version
    /// this build does not read.
    pub fn read(path: &Path) -> Result<Checkpoint, Error> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::CheckpointMissing { path: path.to_owned() });
            }
            Err(source) => return Err(Error::CheckpointRead { path: path.to_owned(), source }),
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes)
            .map_err(|source| Error::CheckpointFormat { path: path.to_owned(), source })?;
        if !(OLDEST_READABLE_VERSION..=CHECKPOINT_VERSION).contains(&checkpoint.version) {
            return Err(Error::CheckpointVersion {
                path: path.to_owned(),
                version: checkpoint.version,
                oldest: OLDEST_READABLE_VERSION,
                newest: CHECKPOINT_VERSION,
            });
        }
        Ok(checkpoint)
    }

    /// Checks that this checkpoint is of a replay of `metadata` with
    /// `selection`, and `id_seed` if one is given.
    ///
    /// # Errors
    /// [`Error::CheckpointMismatch`], saying what differs and what to do.
    pub fn check(
        &self,
        path: &Path,
        metadata: &SessionMetadata,
        selection: &Fingerprinted,
        id_seed: Option<u64>,
    ) -> Result<(), Error> {
        let file = path.display();
        if self.session_id != metadata.session_id {
            return Err(Error::CheckpointMismatch(format!(
                "the checkpoint {file} is of a replay of session {}, not {}; resume without --session, \
                 or start again without --resume",
                self.session_id, metadata.session_id
            )));
        }
        if self.content_hash != metadata.content_hash {
            return Err(Error::CheckpointMismatch(format!(
                "session {} changed since the checkpoint {file} was written (its content hash is {}, the \
                 checkpoint's {}): its position means nothing now; start again without --resume",
                metadata.session_id, metadata.content_hash, self.content_hash
            )));
        }
        if self.fingerprint != selection.fingerprint() {
            let differences = self.selection.differences(selection);
            let differences =
                if differences.is_empty() { "its fingerprint differs".to_owned() } else { differences.join(", ") };
            return Err(Error::CheckpointMismatch(format!(
                "the checkpoint {file} is of a replay with another selection: {differences}; resume with the \
                 same --traces/--metrics/--logs, --services, --from, --until, --phase, --shard, --start-at, \
                 --timestamps and id options, or start again without --resume"
            )));
        }
        if let Some(seed) = id_seed
            && seed != self.id_seed
        {
            return Err(Error::CheckpointMismatch(format!(
                "the checkpoint {file} replays with --id-seed {}, not {seed}; leave --id-seed out to resume",
                self.id_seed
            )));
        }
        Ok(())
    }
}

/// Writes the checkpoint of a running replay.
#[derive(Debug)]
pub struct CheckpointWriter {
    path: PathBuf,
    template: Checkpoint,
}

impl CheckpointWriter {
    /// A writer of `template`'s replay to `path`.
    pub fn new(path: PathBuf, template: Checkpoint) -> Self {
        CheckpointWriter { path, template }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with the checkpoint at `position` with `counts`.
    ///
    /// # Errors
    /// [`Error::CheckpointWrite`].
    pub fn write(&self, position: Position, counts: ProgressSnapshot, complete: bool) -> Result<(), Error> {
        let mut checkpoint = self.template.clone();
        checkpoint.position = position;
        checkpoint.counts = counts;
        checkpoint.complete = complete;
        checkpoint.updated_at = Timestamp::from_unix_nanos(now_unix_nanos());
        let written = serde_json::to_vec_pretty(&checkpoint).map_err(std::io::Error::other).and_then(|mut json| {
            json.push(b'\n');
            write_atomically(&self.path, &json)
        });
        written.map_err(|source| Error::CheckpointWrite { path: self.path.clone(), source })
    }

    /// Writes the checkpoint each time the done position advances (the
    /// newest position when several advanced during a write) until
    /// `stop`; the task then returns, so that a final write cannot race it.
    /// After each write it tells `durable` the position now on disk, or
    /// `None` when the write failed.
    pub fn spawn(
        self: Arc<Self>,
        progress: Arc<Progress>,
        durable: watch::Sender<Option<Position>>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let mut done = progress.watch_done();
        tokio::spawn(async move {
            let mut warned = false;
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    changed = done.changed() => if changed.is_err() { return },
                }
                let position = done.borrow_and_update().clone();
                let counts = progress.snapshot();
                let writer = Arc::clone(&self);
                let on_disk = position.clone();
                let written = tokio::task::spawn_blocking(move || writer.write(position, counts, false)).await;
                durable.send_replace(matches!(written, Ok(Ok(()))).then_some(on_disk));
                match written {
                    Ok(Ok(())) => warned = false,
                    Ok(Err(error)) if !warned => {
                        warned = true;
                        let error = super::error::Failure::of(&error).full();
                        warn!("{error}; the replay goes on and tries again at the next record");
                    }
                    Ok(Err(_)) => {}
                    Err(error) => warn!("the checkpoint writer stopped: {error}"),
                }
            }
        })
    }
}

/// Replaces `path` with `contents`: a temporary file in the same directory,
/// synced, then renamed over it, so that readers see the old file or the
/// new one, never part of one.
///
/// # Errors
/// The temporary file cannot be created, written, synced or renamed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".otlp-tape-").suffix(".tmp").tempfile_in(directory)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use tape_otlp::{Signal, SignalSet};
    use tape_session::SessionType;

    use super::*;

    fn metadata() -> SessionMetadata {
        let mut metadata =
            SessionMetadata::new("s".parse().unwrap(), SessionType::Seed, Timestamp::default(), "test".to_owned());
        metadata.content_hash = "abc".to_owned();
        metadata
    }

    fn fingerprinted(signals: SignalSet, timestamps: TimestampMode) -> Fingerprinted {
        let selection = Selection { signals, services: Vec::new(), from: Some(5), until: None, shard: None };
        Fingerprinted::new(&selection, timestamps, IdRegeneration::FromSecondPass)
    }

    #[test]
    fn a_checkpoint_round_trips_and_is_replaced_whole() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("replay.checkpoint.json");
        let selection = fingerprinted(SignalSet::ALL, TimestampMode::None);
        let writer = CheckpointWriter::new(path.clone(), Checkpoint::new(&metadata(), selection.clone(), 42));
        writer.write(Position { pass: 0, record: 7, pending: Vec::new() }, ProgressSnapshot::default(), false).unwrap();
        let position = Position { pass: 0, record: 9, pending: vec![2, 5] };
        writer.write(position.clone(), ProgressSnapshot::default(), false).unwrap();
        let read = Checkpoint::read(&path).unwrap();
        assert_eq!((&read.position, read.id_seed, read.complete), (&position, 42, false));
        read.check(&path, &metadata(), &selection, None).unwrap();
        read.check(&path, &metadata(), &selection, Some(42)).unwrap();
        let names: Vec<_> =
            std::fs::read_dir(directory.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, ["replay.checkpoint.json"], "no temporary file is left");
    }

    #[test]
    fn a_checkpoint_of_another_replay_is_refused_with_what_differs() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("c.json");
        let selection = fingerprinted(SignalSet::ALL, TimestampMode::None);
        let checkpoint = Checkpoint::new(&metadata(), selection.clone(), 42);

        let other = fingerprinted(SignalSet::NONE.with(Signal::Traces), TimestampMode::Relative);
        let message = checkpoint.check(&path, &metadata(), &other, None).unwrap_err().to_string();
        assert!(
            message.contains(
                "another selection: signals traces,metrics,logs (now traces), timestamps none (now relative)"
            ),
            "{message}"
        );
        let message = checkpoint.check(&path, &metadata(), &selection, Some(7)).unwrap_err().to_string();
        assert!(message.contains("replays with --id-seed 42, not 7"), "{message}");
        let mut changed = metadata();
        changed.content_hash = "def".to_owned();
        let message = checkpoint.check(&path, &changed, &selection, None).unwrap_err().to_string();
        assert!(message.starts_with("session s changed since the checkpoint"), "{message}");
        let mut renamed = metadata();
        renamed.session_id = "t".parse().unwrap();
        let message = checkpoint.check(&path, &renamed, &selection, None).unwrap_err().to_string();
        assert!(message.contains("is of a replay of session s, not t"), "{message}");
    }

    #[test]
    fn a_resume_of_another_shard_is_refused_and_no_shard_keeps_the_old_fingerprint() {
        let path = Path::new("c.json");
        let shard = |text: &str| {
            let selection = Selection { shard: Some(text.parse().unwrap()), ..Selection::default() };
            Fingerprinted::new(&selection, TimestampMode::None, IdRegeneration::FromSecondPass)
        };
        let checkpoint = Checkpoint::new(&metadata(), shard("0/3"), 42);
        let message = checkpoint.check(path, &metadata(), &shard("1/3"), None).unwrap_err().to_string();
        assert!(message.contains("another selection: shard 0/3 (now 1/3); resume with the same"), "{message}");
        let whole = Fingerprinted::new(&Selection::default(), TimestampMode::None, IdRegeneration::FromSecondPass);
        let message = checkpoint.check(path, &metadata(), &whole, None).unwrap_err().to_string();
        assert!(message.contains("shard 0/3 (now none)"), "{message}");
        checkpoint.check(path, &metadata(), &shard("0/3"), None).unwrap();
        // A replay without a shard writes what a build before shards wrote.
        assert!(!serde_json::to_string(&whole).unwrap().contains("shard"));
        let json = serde_json::to_string(&shard("2/3")).unwrap();
        assert!(json.ends_with(r#""shard":"2/3"}"#), "{json}");
    }

    #[test]
    fn missing_and_foreign_files_are_named() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("missing.json");
        let message = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(
            message.starts_with("--resume: the checkpoint file ") && message.contains("does not exist"),
            "{message}"
        );
        std::fs::write(&path, "{\"hello\": 1}").unwrap();
        let message = Checkpoint::read(&path).unwrap_err().to_string();
        assert!(message.ends_with("is not a replay checkpoint"), "{message}");
    }
}
