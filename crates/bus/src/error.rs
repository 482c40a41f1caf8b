/// A bus failure (as opposed to a rejected message, which is counted, not returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error("zeromq {op} failed on {endpoint}")]
    Socket {
        op: &'static str,
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    #[error("cannot seal a {topic} message")]
    Seal {
        topic: &'static str,
        #[source]
        source: mld_crypto_transport::SealError,
    },
}

pub(crate) fn socket_err(op: &'static str, endpoint: &str) -> impl FnOnce(zmq::Error) -> BusError {
    let endpoint = endpoint.to_owned();
    move |source| BusError::Socket { op, endpoint, source }
}
