"""The documentation site builds strictly, and none of its code can rot.

Every ```python block in docs/ is a `--8<--` include of a file in examples/
(run by test_examples.py) or docs/snippets/ (run here); every ```rust block
is copied verbatim from the reference peer (tests/interop/src), which CI
compiles against the real mosaik crate.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
SNIPPETS = sorted((DOCS / "snippets").glob("*.py"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)
INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"$')
# Languages a page may show, and which of them are checked how.
CHECKED = {"python", "rust"}
SHOWN_ONLY = {"sh", "text", "toml"}


def blocks(language: str) -> list[tuple[str, str]]:
    return [
        (page.relative_to(ROOT).as_posix(), body)
        for page in PAGES
        for lang, body in FENCE.findall(page.read_text())
        if lang == language
    ]


def test_the_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    reference = (tmp_path / "site" / "reference" / "network" / "index.html").read_text()
    assert "Network.create" in reference or "create" in reference
    page = (tmp_path / "site" / "index.html").read_text()
    assert "Network.create" in page and "--8&lt;--" not in page, "a snippet was not included"


def test_every_fenced_block_has_a_known_language() -> None:
    for page in PAGES:
        for language, _ in FENCE.findall(page.read_text()):
            assert language in CHECKED | SHOWN_ONLY, f"{page}: ```{language or '(none)'}"


def test_every_python_block_is_an_included_file_the_tests_run() -> None:
    found = blocks("python")
    assert found
    for page, body in found:
        lines = body.strip().splitlines()
        assert len(lines) == 1, f"{page}: a python block must be one --8<-- include:\n{body}"
        match = INCLUDE.match(lines[0])
        assert match, f"{page}: not an include: {lines[0]}"
        path, section = match.groups()
        assert path.startswith(("examples/", "docs/snippets/")), f"{page}: {path}"
        text = (ROOT / path).read_text()
        if section:
            assert f"# --8<-- [start:{section}]" in text, f"{page}: no section {section} in {path}"
            assert f"# --8<-- [end:{section}]" in text, f"{page}: section {section} never ends"


def test_every_rust_block_is_the_reference_peers_code() -> None:
    sources = [p.read_text() for p in (ROOT / "tests" / "interop" / "src").glob("*.rs")]
    for page, body in blocks("rust"):
        assert any(body.strip() in source for source in sources), f"{page}:\n{body}"


def test_every_snippet_is_shown_somewhere() -> None:
    pages = "\n".join(page.read_text() for page in PAGES)
    for snippet in SNIPPETS:
        assert f'"docs/snippets/{snippet.name}' in pages, f"{snippet.name} is on no page"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: p.name)
def test_snippet_runs(snippet: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(snippet)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "a snippet prints what it shows"
    assert "False" not in result.stdout, result.stdout
    # Each `print(...)  # output` comment shows what that line prints, in order,
    # maybe followed by ": why".
    shown = re.findall(r"^\s*print\(.*\)  # (.+)$", snippet.read_text(), re.MULTILINE)
    printed = result.stdout.splitlines()
    assert len(printed) == len(shown), (shown, printed)
    for comment, line in zip(shown, printed):
        assert comment == line or comment.startswith(line + ": "), (comment, line)
