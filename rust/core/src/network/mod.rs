//! The network layer: endpoints, links and close reasons.

pub mod address;
pub mod close;
pub mod config;
pub mod frames;
pub mod link;
pub mod node;
pub mod protocol;
pub mod route_repair;

pub use address::{AddressError, format_address, parse_address};
pub use close::{CloseReason, RemoteClose};
pub use config::{ConfigError, NodeConfig, RelayChoice};
pub use link::{Link, LinkError};
pub use node::{Node, NodeError};
pub use protocol::{Protocol, ProtocolProvider, Protocols};
