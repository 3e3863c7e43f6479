"""mosaik for Python: self-organizing, leaderless distributed systems.

Nodes that share a network name find each other, exchange typed streams and
replicate state machines in groups, speaking the wire protocol of the Rust
crate ``mosaik`` 0.3.13 on iroh QUIC.
"""

from __future__ import annotations

import atexit
import logging
import os
from importlib import metadata

from . import _mosaik
from ._mosaik import PROTOCOL_VERSION, Jwt, JwtIssuer, id_of
from .discovery import DiscoveryConfig, DiscoveryEvent, PeerInfo, PeerList, TicketInfo
from .errors import (
    Closed,
    ConnectError,
    DecodeError,
    Empty,
    Full,
    MosaikError,
    Offline,
    OutcomeUnknown,
)
from .groups import ApplyContext, ConsensusConfig, Group, StateMachine
from .network import Network
from .streams import Backoff, ChannelInfo, Consumer, Producer, Stats

__all__ = [
    "__version__",
    "Network",
    "Producer",
    "Consumer",
    "Stats",
    "ChannelInfo",
    "Backoff",
    "PeerInfo",
    "PeerList",
    "TicketInfo",
    "DiscoveryEvent",
    "DiscoveryConfig",
    "Group",
    "StateMachine",
    "ApplyContext",
    "ConsensusConfig",
    "Jwt",
    "JwtIssuer",
    "id_of",
    "set_log_level",
    "PROTOCOL_VERSION",
    "MosaikError",
    "Closed",
    "Full",
    "Offline",
    "OutcomeUnknown",
    "Empty",
    "DecodeError",
    "ConnectError",
]

#: The installed package's version (``mosaik-net`` on PyPI).
__version__ = metadata.version("mosaik-net")

_logger = logging.getLogger("mosaik")


def set_log_level(level: int | str) -> None:
    """Sets the ``mosaik`` logger's level and how much the native core forwards to it."""
    _logger.setLevel(level)
    _mosaik._set_log_level(_logger.getEffectiveLevel())


# Forward what the `mosaik` logger would show right now (WARNING by default),
# or what MOSAIK_LOG asks for (a level name such as DEBUG).
if os.environ.get("MOSAIK_LOG"):
    set_log_level(os.environ["MOSAIK_LOG"].upper())
else:
    _mosaik._set_log_level(_logger.getEffectiveLevel())
# Close live nodes and stop the runtime before the interpreter finalizes:
# threads must not touch the GIL once finalization has begun.
atexit.register(_mosaik._shutdown)
