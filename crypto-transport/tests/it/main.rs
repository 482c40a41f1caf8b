//! Integration tests of the sealed envelope, through the public API only.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod envelope;
mod secret;
