//! Integration tests of the sealed envelope, through the public API only.

mod envelope;
mod secret;
