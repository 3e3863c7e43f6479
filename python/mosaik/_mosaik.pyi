# Stubs for the native module; checked against the built module by
# `python -m mypy.stubtest mosaik._mosaik` in the test suite.
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, Protocol, TypedDict, final

__all__ = [
    "PROTOCOL_VERSION",
    "CHOICES",
    "DEFAULTS",
    "MosaikError",
    "Closed",
    "Full",
    "Offline",
    "Empty",
    "DecodeError",
    "ConnectError",
    "OutcomeUnknown",
    "PeerInfo",
    "TicketInfo",
    "Stats",
    "ChannelInfo",
    "DiscoveryEvent",
    "Node",
    "Discovery",
    "DiscoveryEvents",
    "Streams",
    "Producer",
    "Consumer",
    "Batch",
    "Groups",
    "Group",
    "GroupStatus",
    "QueryWork",
    "Jwt",
    "JwtIssuer",
    "id_of",
    "encode_datum",
    "decode_datum",
    "encode_value",
    "decode_value",
    "_ticket_signatures",
    "_shutdown",
    "_inflight",
    "_alive_tasks",
    "_set_log_level",
    "_dropped_log_events",
]

PROTOCOL_VERSION: str
#: The names each option accepts, per argument ("lagging", "overflow", "layout", "relay",
#: "type_name", "consistency").
CHOICES: dict[str, tuple[str, ...]]
#: The core's defaults, by name, as the Python signatures show them.
DEFAULTS: dict[str, Any]

_Layout = Literal["raw", "bytes", "str"]
_Lagging = Literal["disconnect", "drop", "block"]
_Overflow = Literal["block", "drop_oldest", "drop_newest"]

class MosaikError(Exception): ...
class Closed(MosaikError): ...
class Full(MosaikError): ...
class Offline(MosaikError): ...
class Empty(MosaikError): ...
class DecodeError(MosaikError): ...
class ConnectError(MosaikError): ...
class OutcomeUnknown(Offline): ...

@final
class PeerInfo:
    """A peer as its signed entry describes it. Tags and streams are hex ids."""

    @property
    def peer_id(self) -> str: ...
    @property
    def network_id(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def streams(self) -> frozenset[str]: ...
    @property
    def tickets(self) -> tuple[TicketInfo, ...]: ...
    @property
    def groups(self) -> frozenset[str]: ...
    @property
    def protocol_version(self) -> str: ...
    @property
    def version(self) -> tuple[int, int]: ...
    @property
    def updated_at(self) -> float: ...
    @property
    def started_at(self) -> float: ...
    @property
    def uptime(self) -> float: ...
    def has_tag(self, name: str) -> bool: ...
    def in_group(self, group_id: str) -> bool: ...
    def produces(self, stream_name: str) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class TicketInfo:
    """A ticket a peer carries, as listed in its entry: not validated here
    (a validator decides what it is worth)."""

    @property
    def id(self) -> str: ...
    @property
    def class_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def token(self) -> str | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Stats:
    """Datums and encoded payload bytes, counted as mosaik counts them."""

    def __new__(cls, datums: int = 0, bytes: int = 0) -> Stats: ...
    @property
    def datums(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ChannelInfo:
    """One live subscription: a producer's consumer, or a consumer's producer."""

    @property
    def peer_id(self) -> str: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def state(self) -> Literal["connecting", "connected"]: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def uptime(self) -> float | None: ...
    @property
    def peer(self) -> PeerInfo | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DiscoveryEvent:
    """A change in the catalog: ``kind`` is "discovered", "updated" or "departed"."""

    @property
    def kind(self) -> Literal["discovered", "updated", "departed"]: ...
    @property
    def peer(self) -> PeerInfo: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class _DiscoverySettings(Protocol):
    """What ``_NodeOptions.discovery`` must have (``mosaik.DiscoveryConfig``)."""

    @property
    def purge_after(self) -> float: ...
    @property
    def announce_interval(self) -> float: ...
    @property
    def announce_jitter(self) -> float: ...
    @property
    def max_time_drift(self) -> float: ...
    @property
    def sync_timeout(self) -> float: ...
    @property
    def events_backlog(self) -> int: ...

class _BackoffSettings(Protocol):
    """What ``_ConsumerOptions.backoff`` must have (``mosaik.Backoff``)."""

    @property
    def initial(self) -> float: ...
    @property
    def factor(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def max_elapsed(self) -> float: ...
    @property
    def jitter(self) -> bool: ...

class _NodeOptions(TypedDict):
    secret_key: bytes | None
    tags: list[str]
    bootstrap: list[str]
    relay: str
    bind: str | None
    local: bool
    mdns: bool
    dht: bool | None
    discovery: _DiscoverySettings

class _ProducerOptions(TypedDict):
    layout: _Layout
    buffer_size: int
    lagging: _Lagging
    max_consumers: int | None
    max_subscriptions_per_peer: int
    require: Callable[[PeerInfo], bool] | None
    require_ticket: Jwt | Iterable[Jwt] | None

class _ConsumerOptions(TypedDict):
    layout: _Layout
    queue_size: int
    queue_bytes: int
    overflow: _Overflow
    backoff: _BackoffSettings | None
    require: Callable[[PeerInfo], bool] | None
    require_ticket: Jwt | Iterable[Jwt] | None

class _ConsensusSettings(Protocol):
    """What ``_GroupOptions.consensus`` must have (``mosaik.ConsensusConfig``)."""

    @property
    def heartbeat_interval(self) -> float: ...
    @property
    def heartbeat_jitter(self) -> float: ...
    @property
    def max_missed_heartbeats(self) -> int: ...
    @property
    def election_timeout(self) -> float: ...
    @property
    def election_timeout_jitter(self) -> float: ...
    @property
    def bootstrap_delay(self) -> float: ...
    @property
    def forward_timeout(self) -> float: ...
    @property
    def query_timeout(self) -> float: ...
    @property
    def quorum(self) -> int | None: ...
    @property
    def observer(self) -> bool: ...
    @property
    def readers_abstain(self) -> bool: ...

class _GroupOptions(TypedDict):
    #: (signature, Rust type name) of a Python machine; None for NoOp.
    machine: tuple[bytes, str] | None
    consensus: _ConsensusSettings
    require_ticket: Jwt | Iterable[Jwt] | None

@final
class Node:
    @staticmethod
    def create(network: str, options: _NodeOptions) -> Awaitable[Node]: ...
    @property
    def peer_id(self) -> str: ...
    @property
    def network_id(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def discovery(self) -> Discovery: ...
    @property
    def streams(self) -> Streams: ...
    @property
    def groups(self) -> Groups: ...
    def online(self) -> Awaitable[None]: ...
    def close(self) -> Awaitable[None]: ...

@final
class Discovery:
    def peers(self) -> list[PeerInfo]: ...
    def me(self) -> PeerInfo: ...
    def wait_for_peers(self, n: int) -> Awaitable[None]: ...
    def sync_with(self, address: str) -> Awaitable[int]: ...
    def ping(self, address: str, timeout: float) -> Awaitable[PeerInfo]: ...
    def add_tags(self, tags: list[str]) -> Awaitable[bool]: ...
    def remove_tags(self, tags: list[str]) -> Awaitable[bool]: ...
    def add_ticket(self, class_id: str, data: bytes, replace: bool) -> Awaitable[str]: ...
    def remove_ticket(self, ticket_id: str) -> Awaitable[bool]: ...
    def rejections(self) -> dict[str, int]: ...
    def events(self) -> DiscoveryEvents: ...

@final
class DiscoveryEvents:
    def next(self) -> Awaitable[DiscoveryEvent | None]: ...

@final
class Streams:
    def producer(self, stream: str, options: _ProducerOptions) -> Producer: ...
    def consumer(self, stream: str, options: _ConsumerOptions) -> Consumer: ...

@final
class Producer:
    @property
    def stream_id(self) -> str: ...
    @property
    def consumer_count(self) -> int: ...
    @property
    def channels(self) -> list[ChannelInfo]: ...
    @property
    def is_online(self) -> bool: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def refusals(self) -> dict[str, int]: ...
    def send(self, datum: Any) -> Awaitable[None] | None: ...
    def send_many(self, datums: list[Any]) -> int | Awaitable[int]: ...
    def try_send(self, datum: Any) -> None: ...
    def subscribed(self, minimum: int) -> Awaitable[None]: ...
    def unsubscribed(self, maximum: int) -> Awaitable[None]: ...
    def next_subscription(self) -> Awaitable[None]: ...
    def close(self) -> None: ...

@final
class Batch:
    """Datums as they crossed: the items, `(count, channel)` runs saying which
    channel each came through, and `(index, reason)` for undecodable ones."""

    @property
    def items(self) -> list[Any]: ...
    @property
    def runs(self) -> list[tuple[int, int]]: ...
    @property
    def undecodable(self) -> list[tuple[int, str]]: ...

@final
class Consumer:
    @property
    def stream_id(self) -> str: ...
    @property
    def producer_count(self) -> int: ...
    @property
    def channels(self) -> list[ChannelInfo]: ...
    @property
    def dropped(self) -> int: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def is_online(self) -> bool: ...
    @property
    def stats(self) -> Stats: ...
    def recv_batch(self, max_items: int) -> Awaitable[Batch | None]: ...
    def try_recv_batch(self, max_items: int) -> Batch: ...
    def ready_fd(self) -> int: ...
    def arm_ready(self) -> bool: ...
    def clear_ready(self) -> None: ...
    def reject(self, channel: int, reason: str) -> bool: ...
    def subscribed(self, minimum: int) -> Awaitable[None]: ...
    def unsubscribed(self, maximum: int) -> Awaitable[None]: ...
    def next_subscription(self) -> Awaitable[None]: ...
    def close(self) -> None: ...

@final
class Groups:
    def rejections(self) -> dict[str, int]: ...
    def join(self, key: str, options: _GroupOptions) -> Group: ...

@final
class GroupStatus:
    def __eq__(self, other: object, /) -> bool: ...
    @property
    def leader(self) -> str | None: ...
    @property
    def is_leader(self) -> bool: ...
    @property
    def is_online(self) -> bool: ...
    @property
    def term(self) -> int: ...
    @property
    def role(self) -> Literal["follower", "candidate", "leader"]: ...
    @property
    def committed(self) -> int: ...
    @property
    def log_position(self) -> tuple[int, int]: ...
    @property
    def bonds(self) -> frozenset[str]: ...

@final
class QueryWork:
    @property
    def query(self) -> bytes: ...
    @property
    def at(self) -> int: ...
    def answer(self, result: bytes | None) -> None: ...

@final
class Group:
    @property
    def group_id(self) -> str: ...
    @property
    def applied(self) -> int: ...
    @property
    def is_closed(self) -> bool: ...
    def status(self) -> GroupStatus: ...
    def status_changed(self, seen: GroupStatus) -> Awaitable[GroupStatus]: ...
    def feed(self, commands: list[bytes]) -> Awaitable[tuple[int, int]]: ...
    def execute(self, commands: list[bytes]) -> Awaitable[tuple[int, int]]: ...
    def assign(self, commands: list[bytes]) -> Awaitable[tuple[int, int, int]]: ...
    def term_at(self, index: int) -> int | None: ...
    def query(self, query: bytes) -> Awaitable[tuple[bytes, int]]: ...
    def next_work(
        self, applied: int, max: int
    ) -> Awaitable[list[tuple[int, int, bytes]] | QueryWork]: ...
    def close(self) -> Awaitable[None]: ...

_BytesLike = bytes | bytearray | memoryview
_JwtAlgorithm = Literal["HS256", "HS384", "HS512", "ES256", "ES384", "ES512", "EdDSA"]

@final
class Jwt:
    """Validates JWT tickets as mosaik's ``Jwt`` does (collections spec B.2).

    A token passes when its ``alg`` names a configured key that verifies it,
    ``sub`` is the bearer's peer id (or ``subject``), it is not expired
    (``exp`` is required unless ``allow_non_expiring``) nor early (``nbf``),
    ``iss``/``aud`` are among ``issuers``/``audiences`` when those are given,
    ``exp`` is at most ``max_lifetime`` seconds away, ``iat`` at most
    ``max_age`` seconds ago, and every claim of ``claims`` is equal in the
    token. Durations count whole seconds, as in mosaik.
    """

    def __new__(
        cls,
        keys: Iterable[tuple[_JwtAlgorithm, _BytesLike]],
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator with several keys (rotation): each ``(algorithm, key)``
        whose algorithm is a token's ``alg`` is tried."""
    @staticmethod
    def hs256(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is the 32-byte HMAC secret."""
    @staticmethod
    def hs384(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is the 48-byte HMAC secret."""
    @staticmethod
    def hs512(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is the 64-byte HMAC secret."""
    @staticmethod
    def es256(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is a 33-byte compressed P-256 public key."""
    @staticmethod
    def es384(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is a 49-byte compressed P-384 public key."""
    @staticmethod
    def es512(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is a 67-byte compressed P-521 public key."""
    @staticmethod
    def eddsa(
        key: _BytesLike,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator whose key is a 32-byte Ed25519 public key."""
    @property
    def signature(self) -> str:
        """mosaik's validator signature (64 hex), part of a gated group's id."""
    @property
    def class_id(self) -> str:
        """The ticket class read (``mosaik.tickets.jwt.v1``), 64 hex."""
    @property
    def algorithms(self) -> list[str]:
        """The algorithm of each key, in order."""
    def validate(self, token: str, peer_id: str) -> float | None:
        """The expiry (seconds since the epoch, ``None`` for never) of
        ``token`` held by ``peer_id``; ``ValueError`` with the reason if refused."""

@final
class JwtIssuer:
    """Signs JWT tickets as mosaik's ``JwtTicketBuilder`` does."""

    @staticmethod
    def hs256(secret: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 32-byte HMAC secret; ``issuer`` sets ``iss``."""
    @staticmethod
    def hs384(secret: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 48-byte HMAC secret; ``issuer`` sets ``iss``."""
    @staticmethod
    def hs512(secret: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 64-byte HMAC secret; ``issuer`` sets ``iss``."""
    @staticmethod
    def es256(private_key: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 32-byte P-256 private key; ``issuer`` sets ``iss``."""
    @staticmethod
    def es384(private_key: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 48-byte P-384 private key; ``issuer`` sets ``iss``."""
    @staticmethod
    def es512(private_key: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 66-byte P-521 private key; ``issuer`` sets ``iss``."""
    @staticmethod
    def eddsa(private_key: _BytesLike, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer signing with a 32-byte Ed25519 seed; ``issuer`` sets ``iss``."""
    @staticmethod
    def generate(algorithm: _JwtAlgorithm, *, issuer: str | None = None) -> JwtIssuer:
        """An issuer with a fresh random key (keep ``private_key``)."""
    @property
    def algorithm(self) -> str: ...
    @property
    def issuer(self) -> str | None: ...
    @property
    def public_key(self) -> bytes | None:
        """The compressed SEC1 point (ES*) or Ed25519 public key a validator
        needs; ``None`` for HMAC (the secret is shared)."""
    @property
    def private_key(self) -> bytes:
        """The signing key as the constructor takes it."""
    def validator(
        self,
        *,
        issuers: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        subject: str | None = None,
        allow_non_expiring: bool = False,
        max_lifetime: float | None = None,
        max_age: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> Jwt:
        """A validator accepting this issuer's tokens."""
    def issue(
        self,
        *,
        subject: str,
        expires_in: float | None = None,
        expires_at: datetime | int | None = None,
        not_before: datetime | int | None = None,
        issued_at: datetime | int | None = None,
        audience: str | None = None,
        jwt_id: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A compact token for ``subject`` (normally the bearer's peer id).
        Without ``expires_in``/``expires_at`` it never expires; ``issued_at``
        defaults to now; ``claims`` are private claims (JSON values)."""

def id_of(name: str) -> bytes: ...
def encode_datum(layout: _Layout, datum: Any) -> bytes: ...
def decode_datum(layout: _Layout, payload: bytes) -> Any: ...
def encode_value(type_name: str, value: Any) -> bytes: ...
def decode_value(type_name: str, encoded: bytes) -> Any: ...
def _ticket_signatures(require_ticket: Any) -> list[str]: ...
def _shutdown() -> None: ...
def _inflight() -> int: ...
def _alive_tasks() -> int: ...
def _set_log_level(level: int) -> None: ...
def _dropped_log_events() -> int: ...
