-- otlp-tape annotations table, schema version 1.
--
-- otlp-tape applies the files of this directory in the order of their
-- numbers whenever it connects to ClickHouse (they are built into the
-- binary), in the database given by CLICKHOUSE_DATABASE, which it creates
-- when missing. Each file must be safe to apply again. It then checks that
-- the table has every column below with its type, and refuses a table that
-- does not.
--
-- Only String, DateTime and UInt types are used, so ClickHouse 18.16 and
-- current servers both accept it. DateTime columns hold whole seconds (UTC);
-- the *_ns columns hold the exact Unix time in nanoseconds.
--
-- annotation_id is the SHA-256 (hex) of the session, type, key, time range
-- and value: otlp-tape inserts only annotations whose id a session does not
-- have yet, so pushing twice adds nothing, and ReplacingMergeTree folds any
-- duplicate that concurrent pushes might still write.
CREATE TABLE IF NOT EXISTS annotations
(
    annotation_id String,
    session_id String,
    annotation_type String,
    annotation_key String,
    annotation_value String,
    time_range_start DateTime,
    time_range_end DateTime,
    created_at DateTime,
    created_by String,
    time_range_start_ns UInt64,
    time_range_end_ns UInt64,
    created_at_ns UInt64
)
ENGINE = ReplacingMergeTree()
ORDER BY (session_id, annotation_id)
