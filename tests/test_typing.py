"""The stubs match the built module, and the package type-checks strictly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_stubs_match_the_built_module() -> None:
    result = run("mypy.stubtest", "mosaik._mosaik")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_passes_mypy_strict() -> None:
    result = run("mypy", "--strict", "python/mosaik")
    assert result.returncode == 0, result.stdout + result.stderr
