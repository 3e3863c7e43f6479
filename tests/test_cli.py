"""The ``mosaik`` command line, run as a user runs it: a subprocess per command.

Every node is ``--local`` on 127.0.0.1. A test waits on the lines a command
prints (the beacon's JSON line, a ``-v`` status line), never on a sleep.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mosaik

NETWORK = "mosaik-cli-tests"
COMMANDS = [
    ["demo"],
    ["beacon"],
    ["peers"],
    ["ping"],
    ["dht"],
    ["tail"],
    ["publish"],
    ["bench"],
    ["group"],
    ["group", "status"],
]


def mosaik_cli(
    *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mosaik", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Running:
    """A command running in the background, its output read line by line."""

    def __init__(self, *args: str, stdin: bool = False) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mosaik", *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: queue.Queue[str | None] = queue.Queue()
        self.stderr: queue.Queue[str | None] = queue.Queue()
        self.stderr_seen: list[str] = []
        for pipe, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(pipe, lines), daemon=True).start()

    @staticmethod
    def _pump(pipe: object, lines: queue.Queue[str | None]) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def line(self, timeout: float = 30) -> str:
        """The next line of stdout; fails if none comes in time or stdout ends."""
        line = self.stdout.get(timeout=timeout)
        assert line is not None, f"{self.args} ended: {self.rest_of_stderr()}"
        return line

    def stderr_line_with(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.stderr.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, f"{self.args} ended: {self.stderr_seen}"
            self.stderr_seen.append(line)
            if text in line:
                return line

    def rest_of_stderr(self, timeout: float = 10) -> str:
        """What the command wrote to stderr, once it has ended."""
        while (line := self.stderr.get(timeout=timeout)) is not None:
            self.stderr_seen.append(line)
        return "\n".join(self.stderr_seen)

    def rest_of_stdout(self, timeout: float = 10) -> list[str]:
        lines = []
        while (line := self.stdout.get(timeout=timeout)) is not None:
            lines.append(line)
        return lines

    def interrupt(self, within: float = 5) -> tuple[int, float]:
        """Ctrl-C; returns the exit status and how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=within)
        return status, time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Beacon:
    def __init__(self, running: Running, first_line: dict[str, str]) -> None:
        self.running = running
        self.address = first_line["address"]
        self.peer_id = first_line["peer_id"]
        self.network_id = first_line["network_id"]


def start_beacon(*extra: str) -> Beacon:
    running = Running("beacon", NETWORK, "--local", "--json", *extra)
    return Beacon(running, json.loads(running.line()))


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    node = start_beacon()
    try:
        yield node
    finally:
        node.running.stop()


def node_options(beacon: Beacon) -> list[str]:
    return ["--local", "--bootstrap", beacon.address]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# ---- help and version --------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = mosaik_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mosaik {' '.join(command)}"), result.stdout


def test_version_is_the_package_version() -> None:
    result = mosaik_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["mosaik", mosaik.__version__], result.stdout


def test_no_command_lists_the_commands() -> None:
    result = mosaik_cli()
    assert result.returncode == 0, result.stderr
    for name in ("beacon", "peers", "ping", "tail", "publish", "bench", "dht", "group", "demo"):
        assert f"    {name} " in result.stdout, result.stdout


# ---- beacon, ping, peers -----------------------------------------------------------------


def test_beacon_json_first_line_says_how_to_reach_it(beacon: Beacon) -> None:
    assert beacon.address.startswith("endpoint"), beacon.address
    assert len(beacon.peer_id) == 64 and int(beacon.peer_id, 16) >= 0
    assert beacon.network_id == mosaik.id_of(NETWORK).hex()


async def test_beacon_secret_is_a_stable_identity_by_mosaiks_rule() -> None:
    """``--secret S`` is the key ``id_of(S)`` (mosaik: ``Digest::from(&str)``)."""
    first = start_beacon("--secret", "cli-test-beacon")
    first.running.stop()
    again = start_beacon("--secret", "cli-test-beacon")
    again.running.stop()
    assert first.peer_id == again.peer_id
    key = mosaik.id_of("cli-test-beacon")
    async with mosaik.Network.create(NETWORK, local=True, secret_key=key) as same:
        assert same.peer_id == first.peer_id


def test_ping_prints_the_signed_entry_and_round_trip(beacon: Beacon) -> None:
    result = mosaik_cli("ping", beacon.address, "--local", "--json", "--count", "2")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    peer = answer["peer"]
    assert peer["peer_id"] == beacon.peer_id
    assert peer["network_id"] == beacon.network_id
    assert peer["tags"] == [mosaik.id_of("bootstrap").hex()]
    assert peer["names"] == {mosaik.id_of("bootstrap").hex(): "bootstrap"}
    assert len(answer["round_trips_ms"]) == 2 and all(t > 0 for t in answer["round_trips_ms"])

    text = mosaik_cli("ping", beacon.address, "--local")
    assert text.returncode == 0, text.stderr
    assert f"peer id    {beacon.peer_id}" in text.stdout
    assert "tags       bootstrap" in text.stdout
    assert "round trip" in text.stdout and " ms" in text.stdout


def test_peers_lists_the_catalog(beacon: Beacon) -> None:
    result = mosaik_cli("peers", NETWORK, *node_options(beacon), "--json")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    assert catalog["network_id"] == beacon.network_id
    [peer] = catalog["peers"]
    assert peer["peer_id"] == beacon.peer_id
    assert peer["tags"] == [mosaik.id_of("bootstrap").hex()]
    assert peer["age_seconds"] >= 0 and peer["version"]

    text = mosaik_cli("peers", NETWORK, *node_options(beacon))
    assert text.returncode == 0, text.stderr
    header, row = text.stdout.splitlines()[1:3]
    assert header.split() == ["PEER", "TAGS", "STREAMS", "TICKETS", "UPDATED"]
    assert row.split()[:2] == [beacon.peer_id[:16], "bootstrap"], text.stdout


def test_peers_shows_a_producers_stream_by_name(beacon: Beacon) -> None:
    stream = "cli/peers-shows-me"
    publisher = Running("publish", NETWORK, stream, *node_options(beacon), "-v", stdin=True)
    try:
        publisher.stderr_line_with("waiting for 1 subscriber")
        deadline = time.monotonic() + 20
        while True:  # gossip carries the producer's entry to the beacon
            result = mosaik_cli(
                "peers", NETWORK, *node_options(beacon), "--json", "--min-peers", "2",
                "--name", stream,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            peers = json.loads(result.stdout)["peers"]
            producers = [p for p in peers if mosaik.id_of(stream).hex() in p["streams"]]
            if producers or time.monotonic() > deadline:
                break
        assert len(producers) == 1, peers
        assert producers[0]["names"][mosaik.id_of(stream).hex()] == stream
        status, took = publisher.interrupt()
        assert status == 130 and took < 5, (status, took)
        assert "Traceback" not in publisher.rest_of_stderr()
    finally:
        publisher.stop()


def test_peers_watch_prints_a_catalog_then_stops_on_ctrl_c(beacon: Beacon) -> None:
    watcher = Running("peers", NETWORK, *node_options(beacon), "--watch", "--json")
    try:
        first = json.loads(watcher.line())
        assert [p["peer_id"] for p in first["peers"]] == [beacon.peer_id]
        status, took = watcher.interrupt()
        assert status == 130 and took < 5, (status, took)
        assert "Traceback" not in watcher.rest_of_stderr()
    finally:
        watcher.stop()


# ---- tail and publish --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "lines", "printed"),
    [
        ("json", ['{"a": 1}', "[2, 3]", '"three"', "4.5", "null"],
         ['{"a":1}', "[2,3]", '"three"', "4.5", "null"]),
        ("str", ["hello world", "", "ünïcode"], ["hello world", "", "ünïcode"]),
        ("i64", ["1", "-2", "9223372036854775807"], ["1", "-2", "9223372036854775807"]),
        ("bytes", ["00ff", "68656c6c6f"], ["00ff", "68656c6c6f"]),
        ("bool", ["true", "false"], ["true", "false"]),
    ],
)  # fmt: skip
def test_tail_prints_what_publish_sent_in_order(
    beacon: Beacon, codec: str, lines: list[str], printed: list[str]
) -> None:
    stream = f"cli/{codec}"
    options = ["--codec", codec, *node_options(beacon)]
    tail = Running("tail", NETWORK, stream, *options, "--count", str(len(lines)))
    try:
        sent = mosaik_cli("publish", NETWORK, stream, *options, stdin="\n".join(lines) + "\n")
        assert sent.returncode == 0, sent.stderr
        assert f"published {len(lines)} datums to {stream!r}" in sent.stderr
        assert tail.rest_of_stdout(timeout=30) == printed
        assert tail.process.wait(timeout=10) == 0, tail.rest_of_stderr()
    finally:
        tail.stop()


def test_many_lines_arrive_in_order(beacon: Beacon) -> None:
    stream = "cli/many"
    options = ["--codec", "json", *node_options(beacon)]
    tail = Running("tail", NETWORK, stream, *options, "--count", "2000")
    try:
        lines = [json.dumps({"n": n}) for n in range(2000)]
        sent = mosaik_cli("publish", NETWORK, stream, *options, stdin="\n".join(lines) + "\n")
        assert sent.returncode == 0, sent.stderr
        received = [json.loads(line)["n"] for line in tail.rest_of_stdout(timeout=30)]
        assert received == list(range(2000))
    finally:
        tail.stop()


def test_publish_refuses_a_line_its_codec_cannot_read(beacon: Beacon) -> None:
    stream = "cli/bad-line"
    tail = Running("tail", NETWORK, stream, "--codec", "i64", *node_options(beacon), "--count", "1")
    try:
        sent = mosaik_cli(
            "publish", NETWORK, stream, "--codec", "i64", *node_options(beacon),
            stdin="7\nseven\n8\n",
        )  # fmt: skip
        assert_one_line_error(sent, "line 2")
        assert tail.rest_of_stdout(timeout=30) == ["7"]
    finally:
        tail.stop()


def test_ctrl_c_stops_tail_promptly(beacon: Beacon) -> None:
    tail = Running("tail", NETWORK, "cli/nobody", "-v", *node_options(beacon))
    try:
        tail.stderr_line_with("tail: following")
        status, took = tail.interrupt()
        assert status == 130 and took < 5, (status, took)
        assert "Traceback" not in tail.rest_of_stderr()
    finally:
        tail.stop()


def test_ctrl_c_stops_beacon_promptly() -> None:
    node = start_beacon()
    try:
        status, took = node.running.interrupt()
        assert status == 130 and took < 5, (status, took)
        assert "Traceback" not in node.running.rest_of_stderr()
    finally:
        node.running.stop()


def test_ctrl_c_stops_a_ping_in_flight(black_hole: str) -> None:
    ping = Running("ping", black_hole, "--local", "--timeout", "60", "-v")
    try:
        ping.stderr_line_with("pinging")
        status, took = ping.interrupt()
        assert status == 130 and took < 5, (status, took)
        assert "Traceback" not in ping.rest_of_stderr()
    finally:
        ping.stop()


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ping", "not-an-address", "--local"],
        ["peers", NETWORK, "--local", "--bootstrap", "not-an-address"],
        ["tail", NETWORK, "s", "--local", "--bootstrap", "not-an-address"],
        ["beacon", NETWORK, "--local", "--bootstrap", "not-an-address"],
    ],
    ids=lambda args: args[0],
)
def test_a_bad_address_is_a_one_line_error(args: list[str]) -> None:
    assert_one_line_error(mosaik_cli(*args), "not an endpoint ticket")


def test_an_unreachable_peer_is_a_one_line_error(black_hole: str) -> None:
    result = mosaik_cli("ping", black_hole, "--local", "--timeout", "1")
    assert_one_line_error(result, "cannot reach")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tail", NETWORK, "s", "--codec", "yaml"], "invalid choice: 'yaml'"),
        (["tail", NETWORK, "s", "--count", "0"], "--count"),
        (["bench", "--size", "2"], "--size"),
        (["bench", "--seconds", "many"], "--seconds"),
        (["peers", NETWORK, "--local"], "--bootstrap"),
        (["frobnicate"], "invalid choice"),
        (["beacon", NETWORK, "--secret", ""], "--secret"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_a_bad_argument_is_a_one_line_error(args: list[str], says: str) -> None:
    assert_one_line_error(mosaik_cli(*args), says)


# ---- dht, groups, bench ------------------------------------------------------------------


def test_dht_is_off_in_local_mode_and_says_so() -> None:
    local = mosaik_cli("dht", NETWORK, "--local", "--json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["dht"] == "off"
    assert "off in local mode" in mosaik_cli("dht", NETWORK, "--local").stdout
    # Without --local the answer needs no network: this build cannot show the slots.
    assert_one_line_error(mosaik_cli("dht", NETWORK), "not supported by this build")


def test_group_status_shows_the_leader_it_elected(beacon: Beacon) -> None:
    result = mosaik_cli(
        "group", "status", NETWORK, "cli-group-key", *node_options(beacon), "--json",
        "--wait", "40",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    # Alone in the group, the member leads it once the bootstrap delay is over.
    assert status["leader"] == status["peer_id"] and status["role"] == "leader"
    assert status["online"] is True and status["bonds"] == []
    assert status["committed"] >= 0 and set(status["log_position"]) == {"term", "index"}
    assert len(status["group_id"]) == 64


def test_bench_measures_throughput_and_latency() -> None:
    result = mosaik_cli("bench", "--seconds", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["throughput"]["datums_per_second"] > 0
    assert report["throughput"]["mib_per_second"] > 0
    for phase in ("throughput", "latency"):
        latency = report[phase]["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"], report


def test_bench_plot_draws_a_histogram_or_says_what_to_install(tmp_path: Path) -> None:
    image = tmp_path / "latency.png"
    result = mosaik_cli("bench", "--seconds", "0.3", "--plot", str(image))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert_one_line_error(result, "matplotlib")
        assert not image.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert image.read_bytes().startswith(b"\x89PNG")


def test_the_mosaik_script_is_the_same_command_line() -> None:
    script = Path(sys.executable).parent / "mosaik"
    if not script.exists() or not os.access(script, os.X_OK):
        pytest.skip("the package is not installed with its script here")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("mosaik "), result.stderr
