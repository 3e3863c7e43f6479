"""Process lifetime: exit with live nodes, Ctrl-C, fork. Each case runs in
its own interpreter, so a hang or crash fails the test instead of the suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

EXIT_BUDGET = 5.0
TESTS = Path(__file__).parent

NO_CRASH_MARKERS = ("panicked", "Fatal Python error", "no reactor running", "Segmentation")


def python(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(TESTS)),
    )


def wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float = 20) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == expected:
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"never printed {expected!r}; stderr:\n{process.communicate()[1]}")


def assert_clean(stderr: str) -> None:
    for marker in NO_CRASH_MARKERS:
        assert marker not in stderr, stderr


def test_interpreter_exit_with_live_nodes_is_prompt_and_clean() -> None:
    process = python(
        """
        import asyncio, mosaik
        nodes = []
        async def main():
            for _ in range(3):
                nodes.append(await mosaik.Network.create("exit-test", local=True))
            # Nodes that know each other, with a link in flight.
            await nodes[0].discovery.ping(nodes[1].address)
            print("ready", flush=True)
        asyncio.run(main())
        """
    )
    wait_for_line(process, "ready")
    started = time.monotonic()
    _, stderr = process.communicate(timeout=EXIT_BUDGET + 5)
    elapsed = time.monotonic() - started
    assert process.returncode == 0, stderr
    assert elapsed < EXIT_BUDGET, elapsed
    assert_clean(stderr)
    assert "Traceback" not in stderr, stderr


def test_sigint_interrupts_a_pending_await() -> None:
    process = python(
        """
        import asyncio, socket, mosaik
        from endpoint_tickets import encode
        async def main():
            hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            hole.bind(("127.0.0.1", 0))
            silent = encode(
                "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
                [("127.0.0.1", hole.getsockname()[1])],
            )
            async with mosaik.Network.create("sigint-test", local=True) as net:
                pending = asyncio.ensure_future(net.discovery.ping(silent, timeout=None))
                while mosaik._mosaik._inflight() == 0:  # the Rust side has the await
                    await asyncio.sleep(0.01)
                print("waiting", flush=True)
                await pending
        asyncio.run(main())
        """
    )
    wait_for_line(process, "waiting")
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=EXIT_BUDGET + 5)
    elapsed = time.monotonic() - started
    assert elapsed < EXIT_BUDGET, elapsed
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr
    assert_clean(stderr)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_a_clear_error_not_a_hang() -> None:
    process = python(
        """
        import asyncio, os, mosaik
        async def start():
            return await mosaik.Network.create("fork-test", local=True)
        async def main():
            net = await start()
            pid = os.fork()
            if pid == 0:
                try:
                    asyncio.run(start())
                except RuntimeError as e:
                    print("child error:", e, flush=True)
                    os._exit(0 if "fork" in str(e) else 3)
                os._exit(4)
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
            await net.close()
        asyncio.run(main())
        """
    )
    stdout, stderr = process.communicate(timeout=20)
    assert "child error:" in stdout, (stdout, stderr)
    assert "child exit 0" in stdout, (stdout, stderr)
    assert process.returncode == 0, stderr
    assert_clean(stderr)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_that_just_exits_exits_promptly_and_cleanly() -> None:
    """Issue 15: `import mosaik`, start a node, fork; the child calls
    `sys.exit(0)`. Its interpreter exit must not join the parent's threads
    (the log forwarder's join panicked in the child)."""
    process = python(
        """
        import asyncio, os, sys, time, mosaik
        async def main():
            net = await mosaik.Network.create("fork-exit", local=True)
            started = time.monotonic()
            pid = os.fork()
            if pid == 0:
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
            print(f"took {time.monotonic() - started:.2f}", flush=True)
            await net.close()
        asyncio.run(main())
        """
    )
    stdout, stderr = process.communicate(timeout=EXIT_BUDGET + 10)
    assert "child exit 0" in stdout, (stdout, stderr)
    took = float(stdout.split("took ")[1].split()[0])
    assert took < EXIT_BUDGET, stdout
    assert_clean(stderr)
    assert "Exception ignored" not in stderr, stderr
    assert process.returncode == 0, stderr


def test_a_running_loop_in_another_thread_works() -> None:
    """Jupyter runs its own loop; our futures must resolve on whichever loop awaits them."""
    process = python(
        """
        import asyncio, threading, mosaik
        result = {}
        def worker():
            async def main():
                async with mosaik.Network.create("loop-test", local=True) as a:
                    async with mosaik.Network.create("loop-test", local=True) as b:
                        result["peer"] = (await b.discovery.ping(a.address)).peer_id == a.peer_id
            asyncio.run(main())
        t = threading.Thread(target=worker)
        t.start(); t.join(20)
        print("ok" if result.get("peer") else "failed", flush=True)
        """
    )
    stdout, stderr = process.communicate(timeout=30)
    assert stdout.strip() == "ok", stderr
    assert_clean(stderr)
