"""A benchmark process driven by JSON lines: the native reference peer, our
worker (``_worker.py``) or an alternative (``_alternatives.py``).

Each process answers every command line with exactly one line. Commands
can be sent to several processes before any answer is read, which is how a
producer and its consumers run at the same time.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
from typing import Any

Json = dict[str, Any]

#: Bound for a process to print its ``ready`` line.
READY_TIMEOUT_S = 30.0


class BenchError(RuntimeError):
    """A benchmark process refused a command, died or went silent."""


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        # stderr goes to a file: a full pipe would stall a chatty process.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._popen = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        ready = self._next(READY_TIMEOUT_S)
        if ready.get("event") != "ready":
            raise BenchError(f"{name}: unexpected first line {ready}")

    @property
    def pid(self) -> int:
        return self._popen.pid

    def _read_stdout(self) -> None:
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _next(self, timeout: float) -> Json:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"{self.name}: no answer within {timeout:.0f} s") from None
        if line is None:
            raise BenchError(f"{self.name}: exited\n{self.stderr_tail()}")
        answer: Json = json.loads(line)
        return answer

    def send(self, command: Json) -> None:
        assert self._popen.stdin is not None
        try:
            self._popen.stdin.write(json.dumps(command) + "\n")
            self._popen.stdin.flush()
        except OSError as error:
            raise BenchError(f"{self.name}: cannot send ({error})\n{self.stderr_tail()}") from None

    def answer(self, timeout: float) -> Json:
        """The next answer; raises :class:`BenchError` for a refusal."""
        answer = self._next(timeout)
        if not answer.get("ok"):
            raise BenchError(f"{self.name}: {answer.get('error')}\n{self.stderr_tail()}")
        return answer

    def ready_answer(self) -> Json | None:
        """The next answer if it has arrived, else None; raises like :meth:`answer`."""
        if self._lines.empty():
            return None
        return self.answer(0)

    def ask(self, command: Json, timeout: float) -> Json:
        self.send(command)
        return self.answer(timeout)

    def stderr_tail(self, lines: int = 15) -> str:
        self._stderr.seek(0)
        return "".join(self._stderr.readlines()[-lines:])

    def kill(self) -> None:
        """Ends the process at once: no measurement waits for a graceful close."""
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()
        self._stderr.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
