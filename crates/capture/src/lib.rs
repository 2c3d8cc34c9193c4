//! Live capture for otlp-tape: OTLP receivers that record into sessions.
//!
//! This first part is the OTLP/HTTP request body handling of the
//! specification, with no I/O of its own: content types, `Content-Encoding:
//! gzip` decompressed under a size limit that holds while decompressing, the
//! status code of every rejection, and responses encoded like the request.
//! The servers, the recorder and the `capture` command build on it.

mod http_body;

pub use http_body::{
    DEFAULT_MAX_REQUEST_BYTES, ReceivedBody, Rejection, RpcStatus, decode_body, error_response, success_response,
};
