//! The transport layer: the dialer, links and their framing, close reasons, endpoint
//! addresses, the protocol traits subsystems implement, the QUIC limits
//! every connection gets, and the route repair. Nothing here knows any subsystem; `node` composes them.

pub mod address;
pub mod close;
pub mod dialer;
pub mod frames;
pub mod link;
pub mod protocol;
pub mod quic_limits;
pub mod route_repair;

use std::time::Duration;

pub use iroh::{EndpointAddr, EndpointId};

pub use address::{AddressError, format_address, parse_address};
pub use close::{CLOSE_GRACE, CloseReason, RemoteClose};
pub use dialer::Dialer;
pub use link::{Link, LinkError};
pub use protocol::{Protocol, ProtocolProvider, Protocols};

/// How long a connection may hear nothing before it is given up: a peer
/// that was killed or cut off is noticed after this, instead of QUIC's
/// default 30 s. It also bounds how long a connection to a peer's previous
/// run that we cannot close ourselves (iroh-gossip's own dials) keeps
/// iroh's route pointing at the dead address (see `route_repair.rs`). The
/// lower of both sides' values applies, so this holds towards mosaik peers
/// too.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often an otherwise quiet connection sends a keep-alive: often enough
/// that a live link that carries no data never reaches [`IDLE_TIMEOUT`],
/// even with two keep-alives lost.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
