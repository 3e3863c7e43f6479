//! `NodeConfig`: everything needed to start a node, and the endpoint it
//! builds.
//!
//! `local` mode is hermetic: one socket on 127.0.0.1, no port mapping, a
//! DNS resolver with no nameservers, no address publishing, and relays only
//! when a loopback relay URL is named. Otherwise we build the endpoint the
//! way mosaik does, on iroh's N0 preset.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use iroh::{
    Endpoint, EndpointAddr, RelayMap, RelayMode, RelayUrl, SecretKey,
    address_lookup::{mdns::MdnsAddressLookupBuilder, memory::MemoryLookup},
    dns::DnsResolver,
    endpoint::{IdleTimeout, PortmapperConfig, QuicTransportConfig, presets},
};

use crate::{
    discovery::{DiscoveryConfig, DiscoveryConfigError},
    network::{IDLE_TIMEOUT, KEEP_ALIVE, quic_limits, route_repair::RouteRepair},
    primitives::Digest,
};

/// Which relays the endpoint uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayChoice {
    /// n0's public relays (ignored in local mode, which never leaves loopback).
    Default,
    Disabled,
    /// One relay at this URL; no QUIC address discovery against it.
    Url(RelayUrl),
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub network: Digest,
    pub secret_key: Option<[u8; 32]>,
    pub tags: Vec<Digest>,
    pub bootstrap: Vec<EndpointAddr>,
    pub relay: RelayChoice,
    pub bind: Option<SocketAddr>,
    pub local: bool,
    /// Find peers on the LAN by mDNS (off by default, as in mosaik; never in local mode).
    pub mdns: bool,
    /// Find peers of the network through the public Mainline DHT (on by
    /// default, as in mosaik; never in local mode).
    pub dht: bool,
    pub discovery: DiscoveryConfig,
}

impl NodeConfig {
    pub fn new(network: Digest) -> Self {
        Self {
            network,
            secret_key: None,
            tags: Vec::new(),
            bootstrap: Vec::new(),
            relay: RelayChoice::Default,
            bind: None,
            local: false,
            mdns: false,
            dht: true,
            discovery: DiscoveryConfig::default(),
        }
    }

    /// A hermetic config on loopback, as tests use.
    pub fn local(network: Digest) -> Self {
        Self {
            local: true,
            dht: false,
            ..Self::new(network)
        }
    }

    /// Checks the settings and their combination before anything binds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.discovery.validate()?;
        if !self.local {
            return Ok(());
        }
        if self.mdns {
            return Err(ConfigError::NotLocal { option: "mdns" });
        }
        if self.dht {
            return Err(ConfigError::NotLocal { option: "dht" });
        }
        if let Some(bind) = self.bind
            && !bind.ip().is_loopback()
        {
            return Err(ConfigError::NotLoopback {
                option: "bind",
                value: bind.to_string(),
            });
        }
        if let RelayChoice::Url(url) = &self.relay {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            };
            if !loopback {
                return Err(ConfigError::NotLoopback {
                    option: "relay",
                    value: url.to_string(),
                });
            }
        }
        Ok(())
    }

    pub(super) fn relay_mode(&self) -> RelayMode {
        match (&self.relay, self.local) {
            (RelayChoice::Url(url), _) => RelayMode::Custom(RelayMap::from(iroh::RelayConfig {
                url: url.clone(),
                // QUIC address discovery needs a TLS relay; without this,
                // iroh waits 3 s for QAD probes to a port nobody serves.
                quic: None,
            })),
            (RelayChoice::Default, false) => RelayMode::Default,
            _ => RelayMode::Disabled,
        }
    }

    /// Binds the iroh endpoint this config describes.
    pub async fn bind_endpoint(
        &self,
        key: SecretKey,
        lookup: MemoryLookup,
        repair: RouteRepair,
    ) -> Result<Endpoint, ConfigError> {
        self.validate()?;
        let builder = if self.local {
            let bind = self
                .bind
                .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
            Endpoint::empty_builder()
                .clear_ip_transports()
                .bind_addr(bind)
                .map_err(|e| ConfigError::Bind(e.to_string()))?
                .portmapper_config(PortmapperConfig::Disabled)
                .dns_resolver(DnsResolver::builder().build())
        } else {
            let builder = Endpoint::builder(presets::N0);
            match self.bind {
                Some(bind) => builder
                    .clear_ip_transports()
                    .bind_addr(bind)
                    .map_err(|e| ConfigError::Bind(e.to_string()))?,
                None => builder,
            }
        };
        let builder = if self.mdns {
            builder.address_lookup(MdnsAddressLookupBuilder::default())
        } else {
            builder
        };
        let transport = QuicTransportConfig::builder()
            .max_idle_timeout(Some(
                IdleTimeout::try_from(IDLE_TIMEOUT).expect("a few seconds fit a QUIC varint"),
            ))
            .keep_alive_interval(KEEP_ALIVE)
            // Each path has its own timer (iroh: 6.5 s), and a dead peer's
            // connection lasts until its last path is given up.
            .default_path_max_idle_timeout(IDLE_TIMEOUT)
            .default_path_keep_alive_interval(KEEP_ALIVE);
        let transport = quic_limits::apply(transport).build();
        builder
            .secret_key(key)
            .transport_config(transport)
            .relay_mode(self.relay_mode())
            .address_lookup(lookup)
            .hooks(repair)
            .bind()
            .await
            .map_err(|e| ConfigError::Bind(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{option}: must be a loopback address in local mode, got {value}")]
    NotLoopback { option: &'static str, value: String },
    #[error("{option}: reaches beyond loopback, so it cannot be combined with local mode")]
    NotLocal { option: &'static str },
    #[error(transparent)]
    Discovery(#[from] DiscoveryConfigError),
    #[error("could not bind the endpoint: {0}")]
    Bind(String),
}
