"""The README never lies: its examples and `mosaik demo` run as shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "False" not in result.stdout, result.stdout


@pytest.mark.parametrize("example", ["ping.py", "counter.py", "tickets.py", "metrics.py"])
def test_readme_examples_are_the_examples(example: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert (ROOT / "examples" / example).read_text().split('"""\n', 2)[-1].strip() in readme


def test_mosaik_demo_shows_nodes_meeting_streaming_and_replicating() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mosaik", "demo", "--nodes", "3", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "every node knows the 2 others" in result.stdout, result.stdout
    progress = [line for line in result.stdout.splitlines() if "datums/s delivered" in line]
    assert progress, result.stdout
    delivered = int(progress[-1].split("]")[1].split()[0].replace(",", ""))
    assert delivered > 0, result.stdout
    [total] = [line for line in result.stdout.splitlines() if line.startswith("| all consumers")]
    datums, rate, _, p50, p99 = (cell.strip() for cell in total.strip("|").split("|")[1:])
    assert int(datums.replace(",", "")) > 0 and float(p50) <= float(p99), total
    [elected] = [line for line in result.stdout.splitlines() if "members elected" in line]
    assert "3 members" in elected, elected
    [counter] = [line for line in result.stdout.splitlines() if "replicated counter" in line]
    totals = counter.split(":")[1].strip()
    assert totals.startswith("[") and len(set(totals.strip("[]").split(", "))) == 1, counter
    assert int(totals.strip("[]").split(", ")[0]) >= 1, counter
    assert "all nodes closed" in result.stdout
