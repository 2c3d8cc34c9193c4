//! A file being written under a temporary name until every record is in it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use tape_otlp::Signal;
use tape_session::{Record, SessionId};

use super::ExportedFile;
use crate::format::{SignalWriter, WriteError};
use crate::{Error, FileFormat};

/// A file being written under a temporary name until every record is in it.
pub(super) struct PendingFile {
    signal: Signal,
    path: PathBuf,
    temp: PathBuf,
    writer: Box<dyn SignalWriter>,
    requests: u64,
    items: u64,
}

impl PendingFile {
    /// The name of `signal`'s file in `format`, an OTLP format.
    pub(super) fn name(format: FileFormat, signal: Signal) -> Result<String, Error> {
        format.file_name(signal).ok_or(Error::NotOtlp { format })
    }

    /// A new file at `path` (written as `.<name>.partial` beside it) in
    /// `format`, an OTLP format.
    pub(super) fn create(signal: Signal, path: PathBuf, format: FileFormat) -> Result<Self, Error> {
        let temp = temp_path(&path);
        let file = File::create(&temp).map_err(|source| Error::Create { path: temp.clone(), source })?;
        let Some(writer) = format.writer(signal, file) else {
            let _ = fs::remove_file(&temp);
            return Err(Error::NotOtlp { format });
        };
        Ok(PendingFile { signal, path, temp, writer, requests: 0, items: 0 })
    }

    /// Appends one record; returns the bytes written.
    pub(super) fn write(&mut self, session: &SessionId, record: &Record) -> Result<u64, Error> {
        let written = self.writer.write(session, record).map_err(|error| match error {
            WriteError::Record(error) => error,
            WriteError::Io(source) => Error::Write { path: self.temp.clone(), source },
        })?;
        self.requests += 1;
        self.items += record.item_count;
        Ok(written)
    }

    /// Finishes the format, syncs and gives the file its name.
    pub(super) fn finish(self) -> Result<ExportedFile, Error> {
        let PendingFile { signal, path, temp, writer, requests, items } = self;
        let finished = writer.finish().and_then(|file| file.sync_all());
        if let Err(source) = finished.and_then(|()| fs::rename(&temp, &path)) {
            let _ = fs::remove_file(&temp);
            return Err(Error::Write { path, source });
        }
        Ok(ExportedFile { signal, path, requests, items })
    }

    pub(super) fn discard(self) {
        let _ = fs::remove_file(&self.temp);
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}
