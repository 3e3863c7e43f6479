"""The Python alternatives' side of the 64 B rows: pyzmq and eclipse-zenoh.

    python benches/_alternatives.py zmq-pubsub | zmq-pushpull | zenoh

Driven like ``_worker.py`` (one JSON command per line on stdin, one answer
per line on stdout) with the same ``start``, ``bench_produce`` and
``bench_consume`` commands, throughput only (no ``latency``, ``pause_s``
or ``nodes`` beyond 1). Everything binds 127.0.0.1.

- ``zmq-pubsub``: an XPUB socket (PUB that also reports subscriptions, so
  the producer starts once the subscriber is there) to a SUB socket over
  tcp://127.0.0.1. PUB/SUB drops at the high-water mark; both marks are
  ``HWM`` and the driver reports the loss from the producer's checkpoints.
- ``zmq-pushpull``: PUSH to PULL, which blocks at the high-water mark
  instead of dropping: lossless, like our ``lagging="block"``.
- ``zenoh``: two sessions in peer mode, listening and connecting only on
  tcp/127.0.0.1, multicast scouting off; the publisher blocks under
  congestion (``CongestionControl.BLOCK``: lossless), the subscriber counts
  in a callback.

Loops follow the plain blocking style of each library's own examples.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import pool_of, sent_at  # noqa: E402 - the benches folder is not a package

Json = dict[str, Any]

HWM = 100_000
DEFAULT_TIMEOUT_S = 30.0
CHECKPOINT_EVERY_NS = 10_000_000
#: Messages sent or received between two looks at the clock.
CHUNK = 256
#: Bound of one blocking socket call, so that no loop outlives its deadline.
SOCKET_TIMEOUT_MS = 200
ZENOH_KEY = "bench/stream"


def timeout_of(cmd: Json) -> float:
    return float(cmd.get("timeout_ms", DEFAULT_TIMEOUT_S * 1000)) / 1000


class Checkpoints:
    """``[t_ns, sent]`` pairs about every 10 ms, as the other producers keep."""

    def __init__(self, started_ns: int) -> None:
        self.points = [[started_ns, 0]]

    def add(self, now: int, sent: int) -> None:
        if now - self.points[-1][0] >= CHECKPOINT_EVERY_NS:
            self.points.append([now, sent])

    def close(self, sent: int) -> list[list[int]]:
        self.points.append([time.monotonic_ns(), sent])
        return self.points


class Window:
    """The consumer's clock: first datum, warm-up, then a counted window,
    placed on the producer's start time stamped into the datums.

    The receive loop only bumps ``datums`` (and keeps the ``first`` datum);
    ``run`` snapshots the count at the window's edges from another thread.
    """

    def __init__(self) -> None:
        self.datums = 0
        self.first: bytes | None = None
        self.stop = False

    def run(self, cmd: Json) -> Json:
        deadline = time.monotonic() + timeout_of(cmd)
        while self.first is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no datum arrived")
            time.sleep(0.001)
        warmup_end = sent_at(self.first) + int(float(cmd["warmup_s"]) * 1e9)
        window_end = warmup_end + int(float(cmd["seconds"]) * 1e9)
        sleep_until(warmup_end)
        start_ns, counted = time.monotonic_ns(), self.datums
        if start_ns >= window_end:
            raise RuntimeError("the first datum came after the measuring window")
        sleep_until(window_end)
        end_ns, last = time.monotonic_ns(), self.datums
        self.stop = True
        return {
            "datums": last - counted,
            "window_ns": end_ns - start_ns,
            "window_start_ns": start_ns,
            "window_end_ns": end_ns,
        }


def sleep_until(t_ns: int) -> None:
    time.sleep(max(0.0, (t_ns - time.monotonic_ns()) / 1e9))


class Zmq:
    def __init__(self, pattern: str) -> None:
        import zmq

        self.zmq = zmq
        self.context = zmq.Context()
        self.pubsub = pattern == "zmq-pubsub"
        self.sender: Any = None

    def start(self, cmd: Json) -> Json:
        zmq = self.zmq
        self.sender = self.context.socket(zmq.XPUB if self.pubsub else zmq.PUSH)
        self.sender.setsockopt(zmq.SNDHWM, HWM)
        self.sender.setsockopt(zmq.SNDTIMEO, SOCKET_TIMEOUT_MS)
        port = self.sender.bind_to_random_port("tcp://127.0.0.1")
        return {"address": f"tcp://127.0.0.1:{port}"}

    def produce(self, cmd: Json) -> Json:
        zmq = self.zmq
        if self.pubsub:
            # XPUB hands each subscription over as a message: wait for them.
            self.sender.setsockopt(zmq.RCVTIMEO, int(timeout_of(cmd) * 1000))
            for _ in range(int(cmd.get("consumers", 1))):
                self.sender.recv()
        started = time.monotonic_ns()
        chunk = pool_of(int(cmd["size"]), started)[:CHUNK]
        send = self.sender.send
        checkpoints = Checkpoints(started)
        sent = 0
        deadline = started + int(float(cmd["seconds"]) * 1e9)
        try:
            while (now := time.monotonic_ns()) < deadline:
                checkpoints.add(now, sent)
                for message in chunk:
                    send(message)
                sent += len(chunk)
        except zmq.Again:
            pass  # PUSH with no puller left: stop, as the deadline would
        return {
            "sent": sent,
            "elapsed_ms": (time.monotonic_ns() - started) // 1_000_000,
            "checkpoints": checkpoints.close(sent),
        }

    def consume(self, cmd: Json) -> Json:
        zmq = self.zmq
        receiver = self.context.socket(zmq.SUB if self.pubsub else zmq.PULL)
        receiver.setsockopt(zmq.RCVHWM, HWM)
        receiver.setsockopt(zmq.RCVTIMEO, SOCKET_TIMEOUT_MS)
        if self.pubsub:
            receiver.setsockopt(zmq.SUBSCRIBE, b"")
        receiver.connect(cmd["bootstrap"][0])
        window = Window()

        def receive() -> None:
            recv = receiver.recv
            while window.first is None and not window.stop:
                try:
                    window.first = recv()
                    window.datums += 1
                except zmq.Again:
                    continue
            while not window.stop:
                try:
                    for _ in range(CHUNK):
                        recv()
                        window.datums += 1
                except zmq.Again:
                    continue

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        try:
            report = window.run(cmd)
        finally:
            window.stop = True
            thread.join(timeout=2)
            receiver.close(linger=0)
        return {"consumers": [report]}


class Zenoh:
    def __init__(self) -> None:
        import zenoh

        self.zenoh = zenoh
        self.session: Any = None
        self.publisher: Any = None

    def open(self, listen: list[str], connect: list[str]) -> Any:
        config = self.zenoh.Config()
        config.insert_json5("mode", '"peer"')
        config.insert_json5("listen/endpoints", json.dumps(listen))
        config.insert_json5("connect/endpoints", json.dumps(connect))
        config.insert_json5("scouting/multicast/enabled", "false")
        return self.zenoh.open(config)

    def start(self, cmd: Json) -> Json:
        address = f"tcp/127.0.0.1:{free_port()}"
        self.session = self.open(listen=[address], connect=[])
        self.publisher = self.session.declare_publisher(
            ZENOH_KEY, congestion_control=self.zenoh.CongestionControl.BLOCK
        )
        return {"address": address}

    def produce(self, cmd: Json) -> Json:
        deadline = time.monotonic() + timeout_of(cmd)
        while not self.publisher.matching_status.matching:
            if time.monotonic() > deadline:
                raise TimeoutError("no subscriber matched")
            time.sleep(0.01)
        started = time.monotonic_ns()
        chunk = pool_of(int(cmd["size"]), started)[:CHUNK]
        put = self.publisher.put
        checkpoints = Checkpoints(started)
        sent = 0
        deadline_ns = started + int(float(cmd["seconds"]) * 1e9)
        while (now := time.monotonic_ns()) < deadline_ns:
            checkpoints.add(now, sent)
            for message in chunk:
                put(message)
            sent += len(chunk)
        return {
            "sent": sent,
            "elapsed_ms": (time.monotonic_ns() - started) // 1_000_000,
            "checkpoints": checkpoints.close(sent),
        }

    def consume(self, cmd: Json) -> Json:
        session = self.open(listen=[], connect=list(cmd["bootstrap"]))
        window = Window()

        def on_sample(sample: Any) -> None:
            window.datums += 1
            if window.first is None:
                window.first = sample.payload.to_bytes()

        subscriber = session.declare_subscriber(ZENOH_KEY, on_sample)
        try:
            report = window.run(cmd)
        finally:
            subscriber.undeclare()
            session.close()
        return {"consumers": [report]}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (zenoh needs a number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(kind: str) -> None:
    transport: Zmq | Zenoh = Zenoh() if kind == "zenoh" else Zmq(kind)
    commands = {
        "start": transport.start,
        "bench_produce": transport.produce,
        "bench_consume": transport.consume,
    }
    print(json.dumps({"event": "ready"}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            if cmd.get("cmd") == "shutdown":
                break
            answer: Json = {"ok": True, **commands[cmd["cmd"]](cmd)}
        except Exception as error:  # every failure becomes an answer
            trace = traceback.format_exc(limit=4)
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}\n{trace}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("zmq-pubsub", "zmq-pushpull", "zenoh"):
        sys.exit(__doc__)
    serve(sys.argv[1])
