"""The counter linearizability checker (tests/linearizability.py), against
hand-made histories, a brute-force oracle, and long random histories."""

from __future__ import annotations

import random
import time

import pytest

from linearizability import Op, check, from_records


def add(x: int, invoke: float, complete: float | None, client: str = "") -> Op:
    return Op("add", x, invoke, complete, client)


def read(total: int, invoke: float, complete: float, client: str = "") -> Op:
    return Op("read", total, invoke, complete, client)


def test_an_empty_history_is_linearizable() -> None:
    assert check([]).ok
    assert check([read(0, 0, 1)]).ok
    assert not check([read(5, 0, 1)]).ok


def test_a_sequential_history() -> None:
    history = [add(1, 0, 1), read(1, 2, 3), add(2, 4, 5), read(3, 6, 7)]
    result = check(history)
    assert result.ok, result.detail
    assert result.linearization == [0, 1, 2, 3]


def test_a_stale_read_after_a_completed_write_is_rejected() -> None:
    history = [add(1, 0, 1), add(2, 2, 3), read(1, 4, 5)]
    result = check(history)
    assert result.outcome == "violation"
    assert result.stuck_on == 2
    assert "read() -> 1" in result.detail
    # The same read, started before the write completed, may see the old state.
    assert check([add(1, 0, 1), add(2, 2, 4.5), read(1, 4, 5)]).ok


def test_a_read_of_a_state_that_never_existed_is_rejected() -> None:
    # Both adds are concurrent with the read, but no prefix sums to 4.
    assert not check([add(1, 0, 3), add(2, 0, 3), read(4, 1, 2)]).ok
    for total in (0, 1, 2, 3):
        assert check([add(1, 0, 3), add(2, 0, 3), read(total, 1, 2)]).ok


def test_concurrent_ops_linearize_in_either_order() -> None:
    for seen in (0, 10):
        assert check([add(10, 0, 2), read(seen, 1, 3)]).ok
    # Two readers overlapping one write: each may see either state ...
    assert check([add(10, 0, 10), read(10, 1, 2), read(10, 3, 4)]).ok
    assert check([add(10, 0, 10), read(0, 1, 2), read(10, 3, 4)]).ok
    # ... but once one has seen the write, a later one must too.
    result = check([add(10, 0, 10), read(10, 1, 2), read(0, 3, 4)])
    assert result.outcome == "violation"
    assert result.stuck_on == 2


def test_touching_intervals_are_concurrent() -> None:
    assert check([add(1, 0, 1), read(0, 1, 2)]).ok
    assert not check([add(1, 0, 1), read(0, 1.000001, 2)]).ok


def test_an_unknown_write_may_take_effect_later_or_never() -> None:
    # Never observed: fine.
    assert check([add(5, 0, None), read(0, 1, 2), read(0, 10, 11)]).ok
    # Observed long after its call "ended": fine, it took effect late.
    assert check([add(5, 0, None), read(0, 1, 2), read(5, 10, 11)]).ok
    # Once observed, it stays.
    assert not check([add(5, 0, None), read(5, 1, 2), read(0, 10, 11)]).ok
    # Never before it was invoked.
    assert not check([read(5, 0, 1), add(5, 2, None)]).ok
    # Several unknown writes, some observed, in some order.
    history = [
        add(1, 0, None),
        add(2, 0, None),
        add(4, 0, None),
        read(4, 1, 2),
        read(6, 3, 4),
        add(8, 5, 6),
        read(14, 7, 8),
    ]
    assert check(history).ok
    assert not check([*history, read(7, 9, 10)]).ok
    assert check([*history, read(15, 9, 10)]).ok


def test_records_drop_failed_writes_and_failed_reads() -> None:
    records: list[dict[str, object]] = [
        # Offline: no leader took it, it never takes effect.
        {"kind": "add", "value": 1, "invoke": 0.0, "complete": 1.0, "error": "Offline"},
        # OutcomeUnknown, a client timeout, a killed process: maybe.
        {"kind": "add", "value": 2, "invoke": 0.0, "complete": 1.0, "error": "OutcomeUnknown"},
        {"kind": "add", "value": 4, "invoke": 0.0, "complete": 1.0, "error": "TimeoutError"},
        {"kind": "add", "value": 8, "invoke": 0.0, "complete": None, "error": None},
        {"kind": "add", "value": 16, "invoke": 2.0, "complete": 3.0, "error": None, "result": 7},
        {"kind": "read", "invoke": 4.0, "complete": 5.0, "error": "Offline", "result": None},
        {"kind": "read", "invoke": 4.0, "complete": 5.0, "error": None, "result": 18},
    ]
    ops = from_records(records)
    assert [(op.kind, op.value, op.complete) for op in ops] == [
        ("add", 2, None),
        ("add", 4, None),
        ("add", 8, None),
        ("add", 16, 3.0),
        ("read", 18, 5.0),
    ]
    assert ops[3].index == 7
    assert check(ops).ok
    records.append({"kind": "read", "invoke": 6.0, "complete": 7.0, "error": None, "result": 19})
    # 19 needs the Offline add of 1, which never took effect ...
    assert not check(from_records(records)).ok
    # ... unless Offline is taken as an unknown outcome.
    assert check(from_records(records, offline_took_no_effect=False)).ok


def test_a_small_budget_gives_up_with_unknown() -> None:
    history, _ = random_history(random.Random(1), 200, clients=4)
    result = check(history, budget=50)
    assert result.outcome == "unknown"
    assert result.steps == 50
    assert "gave up after 50 steps" in result.detail
    assert check(history).ok


def brute_force(ops: list[Op]) -> bool:
    """By definition: some order of the completed ops and some of the
    unknown adds respects real time and the counter (the rest never happen)."""

    def extend(left: frozenset[int], total: int) -> bool:
        if all(ops[i].complete is None for i in left):
            return True  # the unknown adds left never take effect
        for i in left:
            op = ops[i]
            # Nothing still to place may have completed before i began.
            if any(
                (end := ops[j].complete) is not None and end < op.invoke for j in left if j != i
            ):
                continue
            if op.kind == "read" and op.value != total:
                continue
            after = total + op.value if op.kind == "add" else total
            if extend(left - {i}, after):
                return True
        return False

    return extend(frozenset(range(len(ops))), 0)


@pytest.mark.parametrize(
    ("adds", "reads", "unknown"),
    [
        ((1, 2, 4), range(8), 0.25),
        ((1, 2, 3, 4, 5), range(16), 0.6),
        ((-2, 1, 3, 0), range(-4, 5), 0.25),
    ],
    ids=["up", "many-unknown", "mixed-signs"],
)
def test_agrees_with_brute_force_on_small_random_histories(
    adds: tuple[int, ...], reads: range, unknown: float
) -> None:
    rng = random.Random(7)
    verdicts = {True: 0, False: 0}
    for _ in range(500):
        ops: list[Op] = []
        for _ in range(rng.randint(1, 8)):
            start = rng.randint(0, 8)
            end = start + rng.randint(0, 4)
            if rng.random() < 0.5:
                complete = None if rng.random() < unknown else float(end)
                ops.append(add(rng.choice(adds), start, complete))
            else:
                ops.append(read(rng.choice(reads), start, end))
        expected = brute_force(ops)
        result = check(ops)
        assert result.outcome in ("ok", "violation")
        assert result.ok == expected, ops
        verdicts[expected] += 1
    assert min(verdicts.values()) > 50  # both verdicts exercised


def random_history(
    rng: random.Random, count: int, clients: int, unknown: float = 0.02
) -> tuple[list[Op], list[float]]:
    """A linearizable history of ``count`` ops from ``clients`` sequential
    clients, each op taking effect at a random point inside its interval
    (unknown adds: later, or never). Returns it and the effect times."""
    ops: list[tuple[float, Op]] = []
    clock = [0.0] * clients
    for _ in range(count):
        c = rng.randrange(clients)
        invoke = clock[c] + rng.random() * 0.01
        complete = invoke + 0.001 + rng.random() * 0.05
        clock[c] = complete
        effect = rng.uniform(invoke, complete)
        if rng.random() < 0.5:
            x = rng.randrange(1, 1 << 31)
            if rng.random() < unknown:  # unknown outcome: maybe much later, maybe never
                effect = effect + rng.random() if rng.random() < 0.5 else float("inf")
                ops.append((effect, add(x, invoke, None, f"c{c}")))
            else:
                ops.append((effect, add(x, invoke, complete, f"c{c}")))
        else:
            ops.append((effect, read(-1, invoke, complete, f"c{c}")))
    # Fill in each read with the total at its effect time.
    order = sorted(range(len(ops)), key=lambda i: ops[i][0])
    total = 0
    values: dict[int, int] = {}
    for i in order:
        effect, op = ops[i]
        if op.kind == "add":
            if effect != float("inf"):
                total += op.value
        else:
            values[i] = total
    history = [
        Op("read", values[i], op.invoke, op.complete, op.client) if op.kind == "read" else op
        for i, (_, op) in enumerate(ops)
    ]
    return history, [effect for effect, _ in ops]


@pytest.mark.parametrize(("seed", "unknown"), [(0, 0.02), (1, 0.02), (2, 0.05), (3, 0.1), (4, 0.1)])
def test_a_thousand_ops_check_quickly(seed: int, unknown: float) -> None:
    rng = random.Random(seed)
    history, _ = random_history(rng, 1000, clients=6, unknown=unknown)
    started = time.monotonic()
    result = check(history)
    took = time.monotonic() - started
    assert result.ok, result.detail
    assert took < 5, f"{took:.2f} s"

    # One stale read: a read that misses an add completed before it began.
    reads = [
        i
        for i, op in enumerate(history)
        if op.kind == "read"
        and any(
            o.kind == "add" and o.complete is not None and o.complete < op.invoke
            for o in history[:i]
        )
    ]
    victim = reads[len(reads) // 2]
    stale = history[victim]
    before = [
        o
        for o in history
        if o.kind == "add" and o.complete is not None and o.complete < stale.invoke
    ]
    latest = max(before, key=lambda o: o.complete or 0.0)
    broken = list(history)
    broken[victim] = Op("read", stale.value - latest.value, stale.invoke, stale.complete)
    started = time.monotonic()
    result = check(broken)
    took = time.monotonic() - started
    assert result.outcome == "violation", result.detail
    assert took < 5, f"{took:.2f} s"
