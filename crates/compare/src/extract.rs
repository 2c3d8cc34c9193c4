//! Records into items: a request decoded and split into its spans, log
//! records or data points, each with its resource and scope; on the
//! expected side after the replay's selection and the id remapping of
//! each pass.
