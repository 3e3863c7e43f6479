//! The transport layer: links and their framing, close reasons, endpoint
//! addresses, the protocol traits subsystems implement, and the route
//! repair. Nothing here knows any subsystem; `node` composes them.

pub mod address;
pub mod close;
pub mod frames;
pub mod link;
pub mod protocol;
pub mod route_repair;

pub use iroh::{EndpointAddr, EndpointId};

pub use address::{AddressError, format_address, parse_address};
pub use close::{CLOSE_GRACE, CloseReason, RemoteClose};
pub use link::{Link, LinkError};
pub use protocol::{Protocol, ProtocolProvider, Protocols};
