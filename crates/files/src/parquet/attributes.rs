//! Attributes as `map<string, string>`, values rendered as the Collector's
//! ClickHouse exporter renders them (pdata's `Value.AsString`). (API
//! surface: being written.)
