//! Why `serve` could not start or failed.

use std::net::SocketAddr;

/// Why `serve` could not start, or why it failed while serving. The
/// messages name the flag of the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API would listen beyond loopback without a token.
    #[error(
        "refusing to serve the control API on {api} (not a loopback address) without a token: set --api-token or \
         OTLP_TAPE_API_TOKEN, or pass --insecure-api to accept anyone who can reach it"
    )]
    Insecure {
        /// The API's address.
        api: SocketAddr,
    },
    /// A setting that must be more than zero is zero.
    #[error("--{flag} must be more than zero")]
    Zero {
        /// The setting's flag, without its dashes.
        flag: &'static str,
    },
    /// The largest request, or how the receivers read request bodies, is
    /// not possible.
    #[error(transparent)]
    Receive(tape_capture::SettingsError),
    /// The retention policy is not valid.
    #[error(transparent)]
    Retention(tape_session::retention::RetentionConfigError),
    /// `--retention-interval` without a criterion to apply.
    #[error(
        "--retention-interval needs a policy: --retention-older-than, --retention-keep-last or \
         --retention-max-total-size"
    )]
    RetentionWithoutPolicy,
    /// The OTLP receivers could not start.
    #[error("cannot start the OTLP receivers")]
    Receivers {
        /// Why.
        #[source]
        source: tape_capture::StartError,
    },
    /// The control API could not listen.
    #[error("cannot listen for the control API on {api}")]
    Listen {
        /// The API's address.
        api: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The control API failed while serving.
    #[error("the control API failed")]
    Serve {
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
