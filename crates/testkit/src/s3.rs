//! An in-process S3 server for tests. (Being written.)
