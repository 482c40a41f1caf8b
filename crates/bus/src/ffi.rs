//! The one socket option the `zmq` 0.9 crate does not expose.
#![allow(unsafe_code, reason = "FFI adapter: zmq_setsockopt for ZMQ_XPUB_NODROP")]

use std::os::raw::c_int;

/// Makes an XPUB socket refuse (EAGAIN) instead of silently dropping when a subscriber's
/// queue is at its high-water mark.
pub(crate) fn set_xpub_nodrop(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    let value: c_int = 1;
    #[expect(clippy::cast_possible_wrap, reason = "the option id is 69")]
    let option = zmq_sys::ZMQ_XPUB_NODROP as c_int;
    // SAFETY: `socket.as_mut_ptr()` is the live handle owned by `socket`, which is borrowed
    // mutably for the whole call, so no other thread uses it; `optval` points to a `c_int` that
    // outlives the call and `optvallen` is exactly its size, as zmq_setsockopt(3) requires for
    // ZMQ_XPUB_NODROP.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            option,
            (&raw const value).cast(),
            size_of::<c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        Err(zmq::Error::from_raw(errno))
    }
}
