"""Groups: members sharing a secret key replicate one state machine.

Every member applies the same committed commands in the same order, through
mosaik's Raft variant. ``net.groups.join(key)`` with no machine joins
mosaik's NoOp group, so it meets a Rust
``network.groups().with_key(GroupKey::from_secret(key)).join()``.

A Python machine meets a Rust one when its ``signature`` is the Rust
machine's ``signature()``, its ``type_name`` the Rust type's
``core::any::type_name`` (it names the catch-up protocol), and its codecs
the Rust command, query and result types (``"i64"``, ``"str"``, ...).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from . import _checks, _html, codecs
from ._handles import Closing, Live, Native
from ._mosaik import DEFAULTS, GroupStatus, QueryWork, id_of
from .errors import Closed, DecodeError, Offline, OutcomeUnknown

if TYPE_CHECKING:
    from ._mosaik import Group as NativeGroup
    from ._mosaik import Groups as NativeGroups
    from ._mosaik import Jwt

__all__ = ["ApplyContext", "ConsensusConfig", "Group", "Groups", "StateMachine"]

_log = logging.getLogger("mosaik.groups")

#: Committed commands handed to a Python machine per crossing.
_APPLY_BATCH = 1024

Consistency = Literal["weak", "strong"]


@dataclass(frozen=True)
class ConsensusConfig:
    """mosaik's consensus settings (seconds), and the rules we add.

    ``heartbeat_interval``, ``heartbeat_jitter`` and ``max_missed_heartbeats``
    are part of the group id: every member must use the same. The others are
    local. ``quorum=n`` (ours, not in the group id): lead and commit only while
    ``n`` members (this one included) are bonded and agree; set it to a
    majority of the deployment and the two sides of a partition never both
    commit. ``None`` is mosaik's rule (a majority of whoever is bonded).
    ``observer``: never stand for election. ``readers_abstain``: as an
    observer, abstain instead of voting (mosaik 0.3.14's rule).
    """

    heartbeat_interval: float = DEFAULTS["consensus_heartbeat_interval"]
    heartbeat_jitter: float = DEFAULTS["consensus_heartbeat_jitter"]
    max_missed_heartbeats: int = DEFAULTS["consensus_max_missed_heartbeats"]
    election_timeout: float = DEFAULTS["consensus_election_timeout"]
    election_timeout_jitter: float = DEFAULTS["consensus_election_timeout_jitter"]
    bootstrap_delay: float = DEFAULTS["consensus_bootstrap_delay"]
    forward_timeout: float = DEFAULTS["consensus_forward_timeout"]
    query_timeout: float = DEFAULTS["consensus_query_timeout"]
    quorum: int | None = None
    observer: bool = False
    readers_abstain: bool = False

    def __post_init__(self) -> None:
        _checks.check_fields(
            self,
            (
                "heartbeat_interval",
                "heartbeat_jitter",
                "election_timeout",
                "election_timeout_jitter",
                "forward_timeout",
                "query_timeout",
            ),
            _checks.check_seconds,
            "consensus.",
        )
        _checks.check_seconds_or_zero("consensus.bootstrap_delay", self.bootstrap_delay)
        if self.heartbeat_jitter >= self.heartbeat_interval:
            raise ValueError(
                "consensus.heartbeat_jitter: must be shorter than heartbeat_interval "
                f"({self.heartbeat_interval!r}), got {self.heartbeat_jitter!r}"
            )
        for name in ("heartbeat_interval", "heartbeat_jitter"):
            if getattr(self, name) < 0.001:
                raise ValueError(f"consensus.{name}: must be at least 0.001 s")
        _checks.check_int("consensus.max_missed_heartbeats", self.max_missed_heartbeats, minimum=1)
        _checks.check_optional_int("consensus.quorum", self.quorum, minimum=1)
        _checks.check_bool("consensus.observer", self.observer)
        _checks.check_bool("consensus.readers_abstain", self.readers_abstain)


@dataclass(frozen=True)
class ApplyContext:
    """Where a command sits in the log: the same on every member."""

    index: int
    term: int


class StateMachine:
    """A deterministic state machine replicated by a group.

    Subclasses set ``signature`` (a str, by mosaik's id rule, or 32 bytes: it
    feeds the group id), and may set ``type_name`` (the Rust type name Rust
    members use; by default the class's module and qualified name with
    ``::``), and the codecs of commands, queries and results (a codec name,
    a Rust type name such as ``"i64"``, or an object with encode/decode).
    ``apply`` must depend only on the state and the command: every member
    replays the same log.
    """

    signature: ClassVar[str | bytes]
    type_name: ClassVar[str | None] = None
    command_codec: ClassVar[Any] = "json"
    query_codec: ClassVar[Any] = "json"
    result_codec: ClassVar[Any] = "json"

    def apply(self, command: Any, ctx: ApplyContext) -> None:
        raise NotImplementedError

    def query(self, query: Any) -> Any:
        raise NotImplementedError


def _signature_of(machine: StateMachine) -> bytes:
    signature = getattr(type(machine), "signature", None)
    if isinstance(signature, str):
        return id_of(signature)
    if isinstance(signature, (bytes, bytearray)):
        if len(signature) != 32:
            raise ValueError(f"machine.signature: expected 32 bytes, got {len(signature)}")
        return bytes(signature)
    raise TypeError(
        "machine.signature: set a class attribute `signature` (str or 32 bytes), "
        f"got {type(signature).__name__}"
    )


def _type_name_of(machine: StateMachine) -> str:
    cls = type(machine)
    name = getattr(cls, "type_name", None)
    if name is None:
        return "::".join([*cls.__module__.split("."), *cls.__qualname__.split(".")])
    return _checks.check_str("machine.type_name", name)


class _Machine:
    """A group's machine and its codecs, resolved once."""

    def __init__(self, machine: StateMachine | None) -> None:
        self.machine = machine
        if machine is None:
            # mosaik's NoOp: `()` commands, queries and results.
            unit = codecs.resolve("()")
            self.commands = self.queries = self.results = unit
            return
        cls = type(machine)
        self.commands = codecs.resolve(cls.command_codec, "machine.command_codec")
        self.queries = codecs.resolve(cls.query_codec, "machine.query_codec")
        self.results = codecs.resolve(cls.result_codec, "machine.result_codec")

    def encode_command(self, command: Any) -> bytes:
        return self.commands.encode(command)

    def apply(self, index: int, term: int, command: bytes) -> None:
        assert self.machine is not None
        try:
            decoded = self.commands.decode(command)
            self.machine.apply(decoded, ApplyContext(index, term))
        except Exception:  # noqa: BLE001 -- a raising apply must not stop the group
            _log.exception("apply raised on command %d; it has no effect here", index)

    def answer(self, work: QueryWork) -> None:
        assert self.machine is not None
        try:
            result = self.machine.query(self.queries.decode(work.query))
            work.answer(self.results.encode(result))
        except Exception:  # noqa: BLE001 -- the asker times out instead
            _log.exception("query raised; the strong query goes unanswered")
            work.answer(None)


def _unprefixed(error: Exception) -> str:
    """A codec's message without the argument name it gave (``value: ...``)."""
    message = str(error)
    head, sep, rest = message.partition(": ")
    return rest if sep and head in ("value", "datum") else message


class _Coalescer:
    """Concurrent calls made in one turn of the event loop share one native
    call: their commands go to the leader as one batch (one crossing, one
    append), and each caller gets back its own part of the indices."""

    def __init__(self, call: Callable[[list[bytes]], Any]) -> None:
        self._call = call
        self._pending: list[tuple[list[bytes], asyncio.Future[tuple[int, ...]]]] = []

    def submit(self, encoded: list[bytes]) -> asyncio.Future[tuple[int, ...]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, ...]] = loop.create_future()
        self._pending.append((encoded, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        # A caller cancelled before the batch left withdraws its commands.
        batch = [(encoded, future) for encoded, future in self._pending if not future.done()]
        self._pending = []
        if batch:
            asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[list[bytes], asyncio.Future[tuple[int, ...]]]]) -> None:
        try:
            result = await self._call([command for encoded, _ in batch for command in encoded])
        except Exception as error:  # noqa: BLE001 -- handed to every caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(type(error)(*error.args))
            return
        # (first, last, extra...): each caller's share, in submission order.
        offset, extra = result[0], tuple(result[2:])
        for encoded, future in batch:
            if not future.done():
                future.set_result((offset, offset + len(encoded) - 1, *extra))
            offset += len(encoded)


class _GroupWhen:
    """Awaitable conditions on a member's view of its group."""

    def __init__(self, group: Group) -> None:
        self._group = group

    async def _until(self, predicate: Callable[[GroupStatus], bool]) -> GroupStatus:
        native = self._group._native
        if native.is_closed:
            raise Closed("the group is closed")
        status = native.status()
        while not predicate(status):
            status = await native.status_changed(status)
        return status

    async def leader_elected(self) -> str:
        """Resolves with the leader once one is known (at once if it is)."""
        status = await self._until(lambda s: s.leader is not None)
        assert status.leader is not None
        return status.leader

    async def leader_changed(self) -> str:
        """Resolves with a leader other than the one known when called."""
        before = self._group._native.status().leader
        status = await self._until(lambda s: s.leader is not None and s.leader != before)
        assert status.leader is not None
        return status.leader

    async def leader_is(self, peer_id: str) -> None:
        _checks.check_str("peer_id", peer_id)
        await self._until(lambda s: s.leader == peer_id)

    async def is_leader(self) -> None:
        await self._until(lambda s: s.is_leader)

    async def is_follower(self) -> None:
        """Resolves when another member leads, or none does."""
        await self._until(lambda s: not s.is_leader)

    async def online(self) -> None:
        await self._until(lambda s: s.is_online)

    async def offline(self) -> None:
        await self._until(lambda s: not s.is_online)

    async def committed(self, index: int) -> int:
        """Resolves with the committed index once it is at least ``index``."""
        _checks.check_int("index", index, minimum=0)
        return (await self._until(lambda s: s.committed >= index)).committed


class Group(Closing):
    """This node's membership of one group. Use ``async with`` or ``close()``."""

    group_id = Native[str]("The group's id, 64 hex (mosaik's derivation).")

    def __init__(
        self,
        native: NativeGroup,
        machine: StateMachine | None,
        consensus: ConsensusConfig,
        peer_id: str,
    ) -> None:
        self._native = native
        self._peer_id = peer_id
        self._machine = _Machine(machine)
        self._when = _GroupWhen(self)
        self._applier: asyncio.Task[None] | None = None
        # A Python machine: `execute` waits here for the applier, not in a
        # second crossing. Waiters by last index: (index, seq, term, future).
        self._applied = 0
        self._waiters: list[tuple[int, int, int, asyncio.Future[None]]] = []
        self._waiter_seq = 0
        #: How long `execute` waits for the apply once the leader took it
        #: (as the core's limit for NoOp groups): then the outcome is unknown.
        self._apply_limit = (
            4 * (consensus.election_timeout + consensus.election_timeout_jitter)
            + consensus.forward_timeout
        )
        self._assign = _Coalescer(native.assign)
        self._execute_natively = _Coalescer(native.execute)
        if machine is not None:
            self._applier = asyncio.get_running_loop().create_task(
                self._apply_forever(), name=f"mosaik group {native.group_id[:10]} apply"
            )

    # ---- the member's view ---------------------------------------------------------

    @property
    def leader(self) -> str | None:
        """The leader's peer id, if one is known."""
        return self._native.status().leader

    @property
    def is_leader(self) -> bool:
        return self._native.status().is_leader

    @property
    def is_online(self) -> bool:
        """A leader is known and this member is in sync with it."""
        return self._native.status().is_online

    @property
    def bonds(self) -> frozenset[str]:
        """Peer ids this member is bonded with now."""
        return self._native.status().bonds

    @property
    def committed(self) -> int:
        return self._native.status().committed

    @property
    def log_position(self) -> tuple[int, int]:
        """(term, index) of the last log entry."""
        return self._native.status().log_position

    @property
    def status(self) -> GroupStatus:
        """Everything above at one moment (also the term and the role)."""
        return self._native.status()

    @property
    def machine(self) -> StateMachine | None:
        """The local state machine (read it; never mutate it). None for NoOp."""
        return self._machine.machine

    @property
    def when(self) -> _GroupWhen:
        return self._when

    # ---- commands and queries ------------------------------------------------------------

    def _encode_all(self, commands: Iterable[Any]) -> list[bytes]:
        if isinstance(commands, (str, bytes)) or not isinstance(commands, Iterable):
            raise TypeError(
                f"commands: expected an iterable of commands, got {type(commands).__name__}"
            )
        try:
            encoded = [self._machine.encode_command(c) for c in commands]
        except (TypeError, ValueError) as e:
            raise type(e)(f"command: {_unprefixed(e)}") from None
        if not encoded:
            raise ValueError("commands: expected at least one command")
        return encoded

    async def execute(self, command: Any = None) -> int:
        """Its log index, once committed and applied on this member."""
        start, _ = await self._run(self._execute, [command], command)
        return start

    async def execute_many(self, commands: Iterable[Any]) -> range:
        """The indices, once all are committed and applied on this member."""
        return await self._run_many(self._execute, commands)

    async def _execute(self, encoded: list[bytes]) -> tuple[int, int]:
        if self._machine.machine is None:
            start, end = await self._execute_natively.submit(encoded)
            return start, end
        start, end, term = await self._assign.submit(encoded)
        await self._until_applied(end, term)
        return start, end

    async def _feed(self, encoded: list[bytes]) -> tuple[int, int]:
        start, end, _ = await self._assign.submit(encoded)
        return start, end

    async def _until_applied(self, index: int, term: int) -> None:
        """Until the machine has applied ``index``, which must hold ``term``:
        another term there means the leader that took it was deposed first."""
        if self._applied >= index:
            if self._native.term_at(index) != term:
                raise Offline("the command was lost: its leader was deposed before committing it")
            return
        if self._applier is None or self._applier.done():
            raise Closed("the group is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter_seq += 1
        heapq.heappush(self._waiters, (index, self._waiter_seq, term, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), self._apply_limit)
        except asyncio.TimeoutError:
            raise OutcomeUnknown(
                "the outcome is unknown: the command may still be committed"
            ) from None

    async def feed(self, command: Any = None) -> int:
        """Its log index, once the leader has assigned it."""
        start, _ = await self._run(self._feed, [command], command)
        return start

    async def feed_many(self, commands: Iterable[Any]) -> range:
        """The indices, once the leader has assigned them."""
        return await self._run_many(self._feed, commands)

    async def _run_many(self, call: Any, commands: Iterable[Any]) -> range:
        listed = commands if isinstance(commands, (str, bytes)) else list(commands)
        start, end = await self._run(call, listed, listed)
        return range(start, end + 1)

    async def _run(self, call: Any, commands: Iterable[Any], original: Any) -> tuple[int, int]:
        encoded = self._encode_all(commands)
        try:
            result: tuple[int, int] = await call(encoded)
        except Offline as error:
            error.command = original  # type: ignore[attr-defined]
            raise
        return result

    async def query(self, query: Any = None, consistency: Consistency = "weak") -> Any:
        """``"weak"``: this member's state; ``"strong"``: the leader's, linearizable."""
        _checks.check_choice("consistency", consistency)
        if consistency == "weak":
            if self._native.is_closed:
                raise Closed("the group is closed")
            machine = self._machine.machine
            return None if machine is None else machine.query(query)
        try:
            encoded = self._machine.queries.encode(query)
        except (TypeError, ValueError) as e:
            raise type(e)(f"query: {_unprefixed(e)}") from None
        try:
            result, _ = await self._native.query(encoded)
        except Offline as error:
            error.query = query  # type: ignore[attr-defined]
            raise
        try:
            return self._machine.results.decode(result)
        except DecodeError:
            raise
        except Exception as e:  # noqa: BLE001 -- a codec's own error, reported as one
            raise DecodeError(f"query result failed to decode: {e}") from e

    # ---- the Python machine ----------------------------------------------------------------

    async def _apply_forever(self) -> None:
        try:
            while True:
                work = await self._native.next_work(self._applied, _APPLY_BATCH)
                if isinstance(work, list):
                    for index, term, command in work:
                        self._machine.apply(index, term, command)
                        self._applied = index
                        self._release(index, term)
                else:
                    self._machine.answer(work)
        except Closed:
            pass
        finally:
            for _, _, _, future in self._waiters:
                if not future.done():
                    future.set_exception(Closed("the group is closed"))
            self._waiters.clear()

    def _release(self, index: int, term: int) -> None:
        """Wakes the executes whose last command is at ``index``."""
        waiters = self._waiters
        while waiters and waiters[0][0] <= index:
            end, _, expected, future = heapq.heappop(waiters)
            if future.done():
                continue
            if end == index and expected == term:
                future.set_result(None)
            elif end == index:
                future.set_exception(
                    Offline("the command was lost: its leader was deposed before committing it")
                )
            else:  # registered after its index was applied: ask the log
                ok = self._native.term_at(end) == expected
                if ok:
                    future.set_result(None)
                else:
                    future.set_exception(Offline("the command was lost: its leader was deposed"))

    async def close(self) -> None:
        """Says goodbye to every bond and leaves. Idempotent."""
        await self._native.close()
        if self._applier is not None:
            self._applier.cancel()
            try:
                await self._applier
            except asyncio.CancelledError:
                pass

    def __repr__(self) -> str:
        status = self._native.status()
        return (
            f"<Group {self.group_id[:10]} {status.role} term={status.term} "
            f"committed={status.committed} bonds={len(status.bonds)}>"
        )

    def _repr_html_(self) -> str:
        return _html.group(self, me=self._peer_id)


class Groups:
    """``net.groups``: joins groups."""

    def __init__(self, native: NativeGroups, peer_id: str) -> None:
        self._native = native
        self._peer_id = peer_id
        self._groups = Live[Group]()

    def _open_groups(self) -> list[Group]:
        """The groups joined here and not left, oldest first."""
        return [g for g in self._groups.items() if not g._native.is_closed]

    @property
    def rejections(self) -> dict[str, int]:
        """Bonds this node refused or ended, by reason (hostile or broken
        peers: ``invalid_proof``, ``undecodable``, ``vote_storm``...)."""
        return self._native.rejections()

    def join(
        self,
        key: str,
        machine: StateMachine | None = None,
        *,
        consensus: ConsensusConfig | None = None,
        require_ticket: Jwt | Iterable[Jwt] | None = (),
    ) -> Group:
        """Joins the group of ``key`` (mosaik's ``GroupKey::from_secret``) with
        ``machine`` (mosaik's NoOp when None). Synchronous, like mosaik's; call
        it with an event loop running.

        ``require_ticket`` (:class:`mosaik.Jwt` validators, all of which must
        pass) admits only members holding valid tickets, checked on both sides
        of every bond (30403) and again when a member's entry changes or its
        ticket expires. The validators' signatures are part of the group id, so
        every member, in Python or Rust, must require the same ones."""
        _checks.check_str("key", key)
        _checks.check_instance("machine", machine, StateMachine, "a mosaik.StateMachine")
        _checks.check_instance("consensus", consensus, ConsensusConfig, "mosaik.ConsensusConfig")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("groups.join needs a running event loop") from None
        spec = None if machine is None else (_signature_of(machine), _type_name_of(machine))
        native = self._native.join(
            key,
            {
                "machine": spec,
                "consensus": consensus or ConsensusConfig(),
                "require_ticket": require_ticket,
            },
        )
        return self._groups.add(
            Group(native, machine, consensus or ConsensusConfig(), self._peer_id)
        )
