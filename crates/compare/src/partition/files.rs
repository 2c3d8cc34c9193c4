//! Partition files: one per side and partition, written as a side is read
//! and read back whole, one partition at a time.
//!
//! A file is a sequence of frames, each a kind byte and then:
//!
//! - `0`, a scope: a varint length and a protobuf message with the
//!   resource (field 1), the resource's schema URL (2), the
//!   instrumentation scope (3) and its schema URL (4). The items after it
//!   have that resource and scope, until the next scope frame.
//! - `1` a span, `2` a log record, `3` a data point: the origin's pass and
//!   record (two varints), a varint length and the item's protobuf (a
//!   `Span`, a `LogRecord`, or for a point the `Metric` that holds only
//!   it).
//!
//! Files are appended to in chunks from a buffer per partition, so no
//! file stays open and the number of partitions is not bounded by the
//! process's open files.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::canonical::encode_point;
use crate::extract::{push_points, service_of};
use crate::partition::partition_of;
use crate::{Error, Item, ItemBody, Origin, Scope};

/// Bytes buffered for all partitions of one side together before they go
/// to their files.
const BUFFERED_BYTES: usize = 32 << 20;
/// The least buffered for one partition.
const MIN_PARTITION_BUFFER: usize = 8 << 10;

const SCOPE: u8 = 0;
const SPAN: u8 = 1;
const LOG: u8 = 2;
const POINT: u8 = 3;

/// The items of a scope frame, as prost reads them back.
#[derive(Clone, PartialEq, prost::Message)]
struct ScopeFrame {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(string, tag = "2")]
    resource_schema_url: String,
    #[prost(message, optional, tag = "3")]
    scope: Option<InstrumentationScope>,
    #[prost(string, tag = "4")]
    scope_schema_url: String,
}

/// The file of one side's partition.
pub(crate) fn file_path(directory: &Path, side: &str, partition: u32) -> PathBuf {
    directory.join(format!("{side}-{partition}.items"))
}

/// Writes one side's items into its partition files.
#[derive(Debug)]
pub(crate) struct PartitionWriter {
    /// Held, so that the directory is removed only when the last writer
    /// and reader are done with it (a comparison that is dropped midway
    /// leaves its threads writing until they notice).
    directory: Arc<TempDir>,
    side: &'static str,
    ignore: Vec<String>,
    buffers: Vec<Buffer>,
    flush_at: usize,
    /// Bytes written to files in all.
    written: u64,
}

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    /// The scope of the last item written (kept so its address is not
    /// reused by another).
    scope: Option<Arc<Scope>>,
}

impl PartitionWriter {
    /// A writer of `partitions` files named after `side` in `directory`;
    /// data point keys leave out the attribute keys in `ignore`.
    pub(crate) fn new(directory: Arc<TempDir>, side: &'static str, partitions: u32, ignore: Vec<String>) -> Self {
        let count = usize::try_from(partitions).unwrap_or(1).max(1);
        PartitionWriter {
            directory,
            side,
            ignore,
            buffers: (0..count).map(|_| Buffer::default()).collect(),
            flush_at: (BUFFERED_BYTES / count).max(MIN_PARTITION_BUFFER),
            written: 0,
        }
    }

    /// Adds an item to its partition's file.
    pub(crate) fn write(&mut self, item: &Item) -> Result<(), Error> {
        let partitions = u32::try_from(self.buffers.len()).unwrap_or(u32::MAX);
        let partition = partition_of(item, partitions, &self.ignore);
        let index = usize::try_from(partition).unwrap_or_default();
        let buffer = &mut self.buffers[index];
        if !buffer.scope.as_ref().is_some_and(|scope| Arc::ptr_eq(scope, &item.scope)) {
            encode_scope(&item.scope, &mut buffer.bytes);
            buffer.scope = Some(Arc::clone(&item.scope));
        }
        encode_item(item, &mut buffer.bytes);
        if buffer.bytes.len() >= self.flush_at {
            self.flush(index)?;
        }
        Ok(())
    }

    /// Writes what is buffered; returns the bytes written in all.
    pub(crate) fn finish(mut self) -> Result<u64, Error> {
        for index in 0..self.buffers.len() {
            self.flush(index)?;
        }
        Ok(self.written)
    }

    fn flush(&mut self, index: usize) -> Result<(), Error> {
        let buffer = &mut self.buffers[index];
        if buffer.bytes.is_empty() {
            return Ok(());
        }
        let partition = u32::try_from(index).unwrap_or(u32::MAX);
        let directory = self.directory.path();
        let path = file_path(directory, self.side, partition);
        let written =
            OpenOptions::new().create(true).append(true).open(&path).and_then(|mut file| file.write_all(&buffer.bytes));
        written.map_err(|source| Error::Partition { directory: directory.display().to_string(), source })?;
        self.written += buffer.bytes.len() as u64;
        buffer.bytes.clear();
        Ok(())
    }
}

fn encode_scope(scope: &Scope, bytes: &mut Vec<u8>) {
    let mut message = Vec::with_capacity(256);
    nested(1, &scope.resource, &mut message);
    string(2, &scope.resource_schema_url, &mut message);
    nested(3, &scope.scope, &mut message);
    string(4, &scope.scope_schema_url, &mut message);
    bytes.push(SCOPE);
    varint(message.len() as u64, bytes);
    bytes.extend_from_slice(&message);
}

fn encode_item(item: &Item, bytes: &mut Vec<u8>) {
    let (kind, length) = match &item.body {
        ItemBody::Span(span) => (SPAN, span.encoded_len()),
        ItemBody::Log(record) => (LOG, record.encoded_len()),
        ItemBody::Point(_) => (POINT, 0),
    };
    bytes.push(kind);
    varint(item.origin.pass, bytes);
    varint(item.origin.record, bytes);
    match &item.body {
        ItemBody::Span(span) => {
            varint(length as u64, bytes);
            span.encode_raw(bytes);
        }
        ItemBody::Log(record) => {
            varint(length as u64, bytes);
            record.encode_raw(bytes);
        }
        ItemBody::Point(point) => {
            let mut metric = Vec::with_capacity(256);
            encode_point(point, &mut metric);
            varint(metric.len() as u64, bytes);
            bytes.extend_from_slice(&metric);
        }
    }
}

/// Reads the items of one side's partition back, or none when the side
/// has no item in it. Items of equal resource and scope share one
/// [`Scope`] again.
pub(crate) fn read_partition(directory: &Path, side: &str, partition: u32) -> Result<Vec<Item>, Error> {
    let path = file_path(directory, side, partition);
    let failed = |source| Error::Partition { directory: directory.display().to_string(), source };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(failed(error)),
    };
    decode_items(&bytes).map_err(|message| {
        failed(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {message}", path.display())))
    })
}

fn decode_items(mut bytes: &[u8]) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut scopes: HashMap<&[u8], Arc<Scope>> = HashMap::new();
    let mut scope: Option<Arc<Scope>> = None;
    while let Some((&kind, rest)) = bytes.split_first() {
        bytes = rest;
        if kind == SCOPE {
            let frame = take(&mut bytes)?;
            let shared = if let Some(shared) = scopes.get(frame) {
                Arc::clone(shared)
            } else {
                let decoded = ScopeFrame::decode(frame).map_err(|error| error.to_string())?;
                let resource = decoded.resource.unwrap_or_default();
                let shared = Arc::new(Scope {
                    service: service_of(&resource),
                    resource,
                    resource_schema_url: decoded.resource_schema_url,
                    scope: decoded.scope.unwrap_or_default(),
                    scope_schema_url: decoded.scope_schema_url,
                });
                scopes.insert(frame, Arc::clone(&shared));
                shared
            };
            scope = Some(shared);
            continue;
        }
        let origin = Origin { pass: take_varint(&mut bytes)?, record: take_varint(&mut bytes)? };
        let message = take(&mut bytes)?;
        let scope = scope.as_ref().ok_or("an item before any scope")?;
        let item = |body| Item { origin, scope: Arc::clone(scope), body };
        match kind {
            SPAN => items.push(item(ItemBody::Span(Span::decode(message).map_err(|error| error.to_string())?))),
            LOG => items.push(item(ItemBody::Log(LogRecord::decode(message).map_err(|error| error.to_string())?))),
            POINT => {
                let metric = Metric::decode(message).map_err(|error| error.to_string())?;
                push_points(metric, |point| items.push(item(ItemBody::Point(point))));
            }
            other => return Err(format!("unknown frame kind {other}")),
        }
    }
    Ok(items)
}

/// A length-delimited part.
fn take<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let length = usize::try_from(take_varint(bytes)?).map_err(|_| "a length too large".to_owned())?;
    if length > bytes.len() {
        return Err("a frame cut short".to_owned());
    }
    let (part, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(part)
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0_u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            *bytes = &bytes[index + 1..];
            return Ok(value);
        }
    }
    Err("a varint cut short".to_owned())
}

fn nested(field: u32, message: &impl Message, bytes: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), bytes);
    varint(message.encoded_len() as u64, bytes);
    message.encode_raw(bytes);
}

fn string(field: u32, text: &str, bytes: &mut Vec<u8>) {
    if !text.is_empty() {
        varint(u64::from(field << 3 | 2), bytes);
        varint(text.len() as u64, bytes);
        bytes.extend_from_slice(text.as_bytes());
    }
}

fn varint(mut value: u64, bytes: &mut Vec<u8>) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

#[cfg(test)]
mod tests {
    use tape_otlp::{ExportRequest, sample};

    use super::*;
    use crate::extract::extract;

    fn items() -> Vec<Item> {
        let mut items = Vec::new();
        for (record, request) in [
            ExportRequest::Traces(sample::traces("checkout", 40, 1_000)),
            ExportRequest::Metrics(sample::metrics("payment", 1_000)),
            ExportRequest::Logs(sample::logs("checkout", 30, 1_000)),
            ExportRequest::Traces(sample::traces("payment", 40, 9_000)),
        ]
        .into_iter()
        .enumerate()
        {
            let origin = Origin { pass: 2, record: record as u64 };
            extract(request.signal(), &request.encode_protobuf(), origin, &mut items).expect("valid");
        }
        items
    }

    #[test]
    fn items_written_to_partitions_read_back_the_same_with_shared_scopes() {
        let directory = Arc::new(tempfile::tempdir().expect("a directory"));
        let items = items();
        let mut writer = PartitionWriter::new(Arc::clone(&directory), "expected", 5, Vec::new());
        for item in &items {
            writer.write(item).expect("written");
        }
        assert!(writer.finish().expect("written") > 0);
        let mut back = Vec::new();
        for partition in 0..5 {
            let part = read_partition(directory.path(), "expected", partition).expect("read");
            assert!(part.iter().all(|item| partition_of(item, 5, &[]) == partition));
            let shared: std::collections::HashSet<*const Scope> =
                part.iter().map(|item| Arc::as_ptr(&item.scope)).collect();
            let distinct: std::collections::HashSet<String> =
                part.iter().map(|item| format!("{:?}", item.scope)).collect();
            assert_eq!(shared.len(), distinct.len(), "one shared scope per resource and scope");
            back.extend(part);
        }
        assert!(read_partition(directory.path(), "actual", 0).expect("no file, no items").is_empty());
        let key = |item: &Item| format!("{:?}", item.body);
        let (mut expected, mut back) = (items, back);
        expected.sort_by_key(key);
        back.sort_by_key(key);
        assert_eq!(back, expected);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_the_directory() {
        let directory = tempfile::tempdir().expect("a directory");
        std::fs::write(file_path(directory.path(), "actual", 0), [SPAN, 0, 0, 9, 1]).expect("written");
        let error = read_partition(directory.path(), "actual", 0).unwrap_err();
        let message = tape_session::error_chain(&error);
        assert!(message.starts_with(&format!("partition files in {}", directory.path().display())), "{message}");
        assert!(message.contains("cut short"), "{message}");
    }
}
