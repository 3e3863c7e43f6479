"""A linearizability checker for histories of a replicated counter.

The model is a register-like counter: ``add(x)`` (a group ``execute`` of the
command ``x``) adds ``x`` to the total, ``read()`` (a strong ``query``)
returns the total. The search is Wing and Gong's, with Lowe's memoization of
(linearized set, state) pairs (the algorithm porcupine and knossos use),
bounded by a step budget: a search that runs out says ``"unknown"`` rather
than running forever.

Timing is strict real-time order: ``a`` precedes ``b`` when ``a`` completed
before ``b`` was invoked; ops whose intervals touch are concurrent. An op
whose outcome is unknown (``complete is None``: it timed out, or its process
was killed) may take effect anywhere after its invocation, or never; that is
the same as a completion at infinity with any return value, since an effect
placed after every completed op is unobservable. A read with an unknown
outcome has no effect and is dropped; so is a known-failed add (it took no
effect).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CheckResult", "Op", "check", "format_op", "from_records"]

Kind = Literal["add", "read"]
Outcome = Literal["ok", "violation", "unknown"]

#: Search steps (a choice tried, a partial sum of unknown adds formed) before giving up.
DEFAULT_BUDGET = 2_000_000


@dataclass(frozen=True)
class Op:
    """One operation of a history.

    ``value`` is the argument ``x`` of an add and the result of a read.
    ``complete`` is None when the outcome is unknown; ``index`` is the log
    index an add returned (informative only: the model ignores it).
    """

    kind: Kind
    value: int
    invoke: float
    complete: float | None
    client: str = ""
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("add", "read"):
            raise ValueError(f"kind: expected 'add' or 'read', got {self.kind!r}")
        if self.complete is not None and self.complete < self.invoke:
            raise ValueError(f"complete ({self.complete}) before invoke ({self.invoke})")


@dataclass
class CheckResult:
    outcome: Outcome
    steps: int
    budget: int
    ops: int
    #: The order found (indices into the checked ops) when ``outcome == "ok"``;
    #: pending adds left out of it never took effect.
    linearization: list[int] | None = None
    #: When not ``"ok"``: the longest prefix the search could linearize, and
    #: the op that could not be placed after it.
    longest_prefix: list[int] = field(default_factory=list)
    stuck_on: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def format_op(op: Op, i: int | None = None) -> str:
    end = "?" if op.complete is None else f"{op.complete:.4f}"
    what = f"add({op.value})" if op.kind == "add" else f"read() -> {op.value}"
    if op.index is not None:
        what += f" = index {op.index}"
    number = "" if i is None else f"#{i} "
    where = f"{op.client} " if op.client else ""
    return f"{number}{where}{what} [{op.invoke:.4f}, {end}]"


class _Entry:
    """A call or a return in the doubly linked list of the history."""

    __slots__ = ("op", "is_call", "time", "match", "prev", "next")

    def __init__(self, op: int, is_call: bool, time: float) -> None:
        self.op = op
        self.is_call = is_call
        self.time = time
        self.match: _Entry | None = None  # a call's return
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _lift(call: _Entry) -> None:
    """Takes a call and its return out of the list."""
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Entry) -> None:
    """Puts them back (the inverse of the last ``_lift``)."""
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def check(ops: Sequence[Op], initial: int = 0, budget: int = DEFAULT_BUDGET) -> CheckResult:
    """Whether ``ops`` (reads with unknown outcomes and failed adds already
    dropped) is linearizable for a counter starting at ``initial``.

    Wing and Gong's search: at each point, any op whose call comes before
    the first return of an op not yet placed may be placed next; a dead end
    undoes the last choice. Lowe's memoization skips a (placed set, total)
    configuration already explored. Adds of unknown outcome are placed only
    in a block just before a read that observes them (any linearization can
    be rearranged so: such an add has no return to respect, so it can always
    move later, past adds it commutes with), the block being a subset whose
    sum the read needs; unobserved ones are left out. That keeps the search
    from trying every subset of them at every step.
    """
    if budget < 1:
        raise ValueError("budget: must be at least 1")
    entries: list[_Entry] = []
    for i, op in enumerate(ops):
        if op.kind == "read" and op.complete is None:
            raise ValueError(f"op {i}: a read with an unknown outcome must be dropped")
        call = _Entry(i, True, op.invoke)
        ret = _Entry(i, False, math.inf if op.complete is None else op.complete)
        call.match = ret
        entries.extend((call, ret))
    # At equal times calls come first: touching intervals are concurrent.
    entries.sort(key=lambda e: (e.time, 0 if e.is_call else 1, e.op))
    head = _Entry(-1, False, -math.inf)
    previous = head
    for item in entries:
        previous.next = item
        item.prev = previous
        previous = item

    search = _Search(ops, head, initial, budget)
    return search.run()


class _Frame:
    """A node of the search: the choices left, and the one being explored."""

    __slots__ = ("choices", "taken")

    def __init__(self, choices: Iterator[list[_Entry]]) -> None:
        self.choices = choices
        self.taken: list[_Entry] | None = None


class _Search:
    def __init__(self, ops: Sequence[Op], head: _Entry, initial: int, budget: int) -> None:
        self.ops = ops
        self.head = head
        self.budget = budget
        self.is_add = [op.kind == "add" for op in ops]
        self.values = [op.value for op in ops]
        self.finite = [op.complete is not None for op in ops]
        self.completed = sum(self.finite)
        # With no negative adds the total never falls: a read below it is dead.
        self.monotone = all(op.value >= 0 for op in ops if op.kind == "add")
        self.state = initial
        self.placed = 0  # a bitset of op indices
        self.done = 0  # completed ops placed
        self.order: list[int] = []
        self.cache: set[tuple[int, int]] = set()
        self.steps = 0
        self.best: list[int] = []
        self.stuck: int | None = None
        # Blocks of three or more unknown adds, by (candidates, sum needed).
        self.larger_blocks: dict[tuple[tuple[int, ...], int], list[list[int]]] = {}

    def run(self) -> CheckResult:
        ops = self.ops
        stack = [_Frame(self.choices())]
        while self.done < self.completed:
            if self.steps >= self.budget:
                return CheckResult(
                    "unknown",
                    self.steps,
                    self.budget,
                    len(ops),
                    longest_prefix=self.best,
                    stuck_on=self.stuck,
                    detail=f"gave up after {self.steps} steps "
                    f"({len(self.cache)} configurations cached; "
                    f"at best {len(self.best)} of {len(ops)} ops placed)",
                )
            frame = stack[-1]
            group = next(frame.choices, None)
            if group is not None:
                self.steps += 1
                placed = self.placed
                state = self.state
                for entry in group:
                    placed |= 1 << entry.op
                    if self.is_add[entry.op]:
                        state += self.values[entry.op]
                key = (placed, state)
                if key in self.cache:
                    continue
                self.cache.add(key)
                frame.taken = group
                for entry in group:
                    _lift(entry)
                    self.order.append(entry.op)
                    self.done += self.finite[entry.op]
                self.placed = placed
                self.state = state
                stack.append(_Frame(self.choices()))
            elif self.steps >= self.budget:
                continue  # cut short by the budget, not exhausted
            else:
                # Every choice from here failed.
                if len(self.order) >= len(self.best):
                    self.best = list(self.order)
                    first = self._first_return()
                    self.stuck = None if first is None else first.op
                stack.pop()
                if not stack:
                    return _violation(ops, self.steps, self.budget, self.best, self.stuck)
                undo = stack[-1].taken
                assert undo is not None
                for entry in reversed(undo):
                    _unlift(entry)
                    self.order.pop()
                    self.done -= self.finite[entry.op]
                    self.placed &= ~(1 << entry.op)
                    if self.is_add[entry.op]:
                        self.state -= self.values[entry.op]
                stack[-1].taken = None
        return CheckResult(
            "ok",
            self.steps,
            self.budget,
            len(ops),
            linearization=list(self.order),
            longest_prefix=list(self.order),
        )

    def _first_return(self) -> _Entry | None:
        entry = self.head.next
        while entry is not None and entry.is_call:
            entry = entry.next
        return entry

    def choices(self) -> Iterator[list[_Entry]]:
        """What may be placed next, lazily: a completed add, or a read, alone
        or after a block of unknown adds that brings the total to its value."""
        calls: list[_Entry] = []
        pending: list[_Entry] = []
        entry = self.head.next
        while entry is not None and entry.is_call:
            if self.finite[entry.op]:
                calls.append(entry)
            else:
                pending.append(entry)
            entry = entry.next
        state = self.state
        reads = [c for c in calls if not self.is_add[c.op]]
        if self.monotone and any(self.values[c.op] < state for c in reads):
            return  # a read that can no longer be placed
        for call in calls:
            if self.is_add[call.op] or self.values[call.op] == state:
                yield [call]
        if pending:
            for call in reads:
                need = self.values[call.op] - state
                if need > 0 or not self.monotone:
                    for block in self._blocks(pending, need):
                        yield [*block, call]

    def _blocks(self, pending: list[_Entry], need: int) -> Iterator[list[_Entry]]:
        """The non-empty subsets of ``pending`` adds summing to ``need``:
        singles and pairs first (cheap, and what a read usually needs), then
        larger ones by meeting in the middle (2^(k/2) sums, not 2^k)."""
        values = self.values
        items = pending
        if self.monotone:
            items = [e for e in pending if values[e.op] <= need]
        where: dict[int, list[int]] = {}
        for k, e in enumerate(items):
            self.steps += 1
            value = values[e.op]
            for other in where.get(need - value, ()):
                yield [items[other], e]
            if value == need:
                yield [e]
            where.setdefault(value, []).append(k)
        if len(items) < 3:
            return
        key = (tuple(e.op for e in items), need)
        larger = self.larger_blocks.get(key)
        if larger is None:
            larger = self._meet_in_the_middle(items, need)
            if larger is None:
                return  # out of budget
            self.larger_blocks[key] = larger
        for block in larger:
            yield [items[k] for k in block]

    def _meet_in_the_middle(self, items: list[_Entry], need: int) -> list[list[int]] | None:
        """Every subset of three or more of ``items`` summing to ``need``, as
        positions; None when the budget ran out."""
        half = len(items) // 2
        left = self._sums(items, range(half), need)
        right = self._sums(items, range(half, len(items)), need)
        if left is None or right is None:
            return None
        by_sum: dict[int, list[list[int]]] = {}
        for total, chosen in right:
            by_sum.setdefault(total, []).append(chosen)
        found: list[list[int]] = []
        for total, chosen in left:
            self.steps += 1
            for other in by_sum.get(need - total, ()):
                if len(chosen) + len(other) >= 3:
                    found.append(chosen + other)
        return found

    def _sums(
        self, items: list[_Entry], positions: range, need: int
    ) -> list[tuple[int, list[int]]] | None:
        sums: list[tuple[int, list[int]]] = [(0, [])]
        for k in positions:
            value = self.values[items[k].op]
            more = [
                (total + value, [*chosen, k])
                for total, chosen in sums
                if not self.monotone or total + value <= need
            ]
            self.steps += len(more)
            if self.steps >= self.budget:
                return None
            sums.extend(more)
        return sums


def _violation(
    ops: Sequence[Op], steps: int, budget: int, best: list[int], stuck: int | None
) -> CheckResult:
    total = sum(ops[i].value for i in best if ops[i].kind == "add")
    lines = [
        f"not linearizable: at best {len(best)} of {len(ops)} ops linearize "
        f"(the total is then {total})"
    ]
    if stuck is not None:
        lines.append(f"then {format_op(ops[stuck], stuck)} cannot take effect")
        op = ops[stuck]
        end = math.inf if op.complete is None else op.complete
        placed = set(best)
        rivals = [
            i
            for i, other in enumerate(ops)
            if i not in placed and i != stuck and other.invoke <= end
        ]
        if rivals:
            lines.append("ops invoked before it completed and not yet placed:")
            lines.extend("  " + format_op(ops[i], i) for i in rivals[:20])
            if len(rivals) > 20:
                lines.append(f"  ... and {len(rivals) - 20} more")
    return CheckResult(
        "violation",
        steps,
        budget,
        len(ops),
        longest_prefix=best,
        stuck_on=stuck,
        detail="\n".join(lines),
    )


def from_records(
    records: Iterable[dict[str, object]], offline_took_no_effect: bool = True
) -> list[Op]:
    """Ops from the records of a run (one dict per op): ``kind`` ("add" or
    "read"), ``value`` (the add's x), ``invoke``, ``complete`` (None if the
    call never returned), ``result`` (a read's total, an add's index),
    ``error`` (an exception class name, None on success), ``client``.

    An add that failed with ``Offline`` (not ``OutcomeUnknown``) took no
    effect and is dropped; any other failure, or no completion, leaves its
    outcome unknown (with ``offline_took_no_effect=False``, so does an
    ``Offline`` one: to see whether a violation hangs on that promise). A
    read that did not succeed is dropped.
    """
    ops: list[Op] = []
    for record in records:
        kind = record["kind"]
        error = record.get("error")
        complete = record.get("complete")
        client = str(record.get("client", ""))
        invoke = _number(record["invoke"])
        if kind == "read":
            if error is not None or complete is None:
                continue
            ops.append(Op("read", _int(record["result"]), invoke, _number(complete), client))
        elif kind == "add":
            if error == "Offline" and offline_took_no_effect:
                continue
            known = error is None and complete is not None
            result = record.get("result")
            ops.append(
                Op(
                    "add",
                    _int(record["value"]),
                    invoke,
                    _number(complete) if known else None,
                    client,
                    _int(result) if known and result is not None else None,
                )
            )
        else:
            raise ValueError(f"unknown op kind {kind!r}")
    return ops


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, got {value!r}")
    return value
