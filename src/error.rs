//! The library's one error type: a kind that maps onto the C status enum, and a message for people.

use std::fmt;

/// What went wrong, coarse enough for a program to act on; the message says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An argument was missing, NULL, not UTF-8 or out of range.
    InvalidArgument,
    /// A target string could not be parsed.
    InvalidTarget,
    /// The target's scheme is not one this library serves.
    UnsupportedScheme,
    /// A wait ran out of time.
    Timeout,
    /// The object was closed (or the runtime shut down) before or during the call.
    Closed,
    /// The call does not fit the object's state (for example `next` on a callback resolver).
    BadState,
    /// A server (etcd, DNS) could not be reached or did not answer in time.
    Unavailable,
    /// A server refused our credentials.
    PermissionDenied,
    /// A thing that was asked for does not exist (for example an unknown cluster name).
    NotFound,
    /// The background runtime could not be started.
    Runtime,
    /// A bug inside the library, caught at the C boundary (a panic).
    Internal,
}

/// An error with its kind and a message that names the bad part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
