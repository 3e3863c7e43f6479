"""Drives the test-only reference peer (`tests/interop`): a real mosaik
0.3.13 node plus a local iroh relay, one JSON command per line."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

ANSWER_TIMEOUT = 30.0


def binary_path() -> Path:
    explicit = os.environ.get("MOSAIK_INTEROP_PEER")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "mosaik-target"))
    return Path(target) / "debug" / "mosaik-interop-peer"


class ReferencePeer:
    """One reference-peer process. Use `await peer.ask({...})`."""

    def __init__(self) -> None:
        path = binary_path()
        if not path.exists():
            raise FileNotFoundError(
                f"reference peer not built at {path}: run `cargo build -p mosaik-interop-peer` "
                "(scripts/test.sh does) or set MOSAIK_INTEROP_PEER"
            )
        env = dict(os.environ, RUST_LOG=os.environ.get("MOSAIK_PEER_LOG", "error"))
        self.process = subprocess.Popen(
            [str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        ready = self._next()
        assert ready == {"event": "ready"}, ready

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def _next(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            raise TimeoutError(f"reference peer silent for {ANSWER_TIMEOUT}s") from None
        if line is None:
            raise RuntimeError("reference peer exited:\n" + "".join(self.stderr[-30:]))
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask_sync(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._next()

    async def ask_async_raw(self, command: dict[str, Any]) -> dict[str, Any]:
        """Sends a command and returns the answer, refusals included."""
        return await asyncio.to_thread(self.ask_sync, command)

    async def sync(self, address: str) -> None:
        """A catalog sync with the node at `address`, asked twice at most:
        between two real mosaik nodes one occasionally times out (one CI run
        in about twenty, under load) and the next succeeds. For setup only;
        a test that checks syncing itself asks `sync` directly."""
        answer = await self.ask_async_raw({"cmd": "sync", "ticket": address})
        if not answer["ok"]:
            print(f"catalog sync failed once, asking again: {answer['error']}")
            await self.ask({"cmd": "sync", "ticket": address})

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        """Sends a command; raises if the peer answers with an error."""
        answer = await asyncio.to_thread(self.ask_sync, command)
        if not answer.get("ok"):
            raise AssertionError(f"reference peer refused {command}: {answer}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
