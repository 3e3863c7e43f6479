//! The two frames that open a subscription.
//!
//! The consumer speaks first with `ConsumerHandshake` (64 bytes: network id,
//! stream id, and an empty `Criteria`); the producer answers `StartStream`
//! (64 bytes: its network and stream ids) and then sends one frame per datum.

use serde::{Deserialize, Serialize};

use crate::primitives::Digest;

/// The largest frame either side reads before the subscription starts: both
/// frames are 64 bytes; the slack leaves room for criteria a later mosaik
/// may carry.
pub(crate) const HANDSHAKE_FRAME_LIMIT: usize = 4096;

/// Consumer-side filter; empty (and always matching) in mosaik 0.3.13.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criteria {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerHandshake {
    pub network_id: Digest,
    pub stream_id: Digest,
    pub criteria: Criteria,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartStream(pub Digest, pub Digest);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::encoding;

    #[test]
    fn both_frames_are_64_bytes_of_ids() {
        let (network, stream) = (
            Digest::from_name("demo"),
            Digest::from_name("alloc::string::String"),
        );
        let handshake = encoding::encode(&ConsumerHandshake {
            network_id: network,
            stream_id: stream,
            criteria: Criteria {},
        })
        .unwrap();
        let expected = [network.as_bytes().as_slice(), stream.as_bytes()].concat();
        assert_eq!(handshake.to_vec(), expected);
        assert_eq!(
            encoding::encode(&StartStream(network, stream)).unwrap().to_vec(),
            expected
        );
    }
}
