"""A griffe extension for the API reference: the package's docstrings are
written for ``help()`` and Sphinx-style readers (``:class:`X```, reST simple
tables); this turns them into Markdown as mkdocstrings renders them, and gives
``Native[...]("doc")`` attributes their docstring. Source files are untouched."""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

# :class:`Offline`, :func:`mosaik.id_of`, :meth:`~mosaik.Producer.send` -> `Offline`, ...
_ROLE = re.compile(r":(?:class|func|meth|attr|exc|mod|data|obj):`~?([^`]+)`")
_BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")
# Defaults written as DEFAULTS["name"] (the native core's table) are shown as values.
_DEFAULT = re.compile(r"""^DEFAULTS\[["']([a-z_]+)["']\]$""")


def _native_defaults() -> dict[str, Any]:
    """The core's defaults, when the native module is importable (it is wherever
    the package is installed); without it, defaults stay as written."""
    try:
        from mosaik._mosaik import DEFAULTS
    except ImportError:
        return {}
    return dict(DEFAULTS)


def _shown(value: object, defaults: dict[str, Any]) -> object:
    match = _DEFAULT.match(str(value)) if value is not None else None
    if match and match.group(1) in defaults:
        return repr(defaults[match.group(1)])
    return value


def _table(lines: list[str]) -> list[str]:
    """A reST simple table (``=== ===`` borders) as a Markdown table."""
    border = lines[0]
    starts = [m.start() for m in re.finditer(r"=+", border)]
    ends = [m.end() for m in re.finditer(r"=+", border)]
    rows = []
    for line in lines[1:]:
        if _BORDER.match(line) or not line.strip():
            continue
        cells = []
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else max(len(line), ends[i])
            cells.append(line[start:end].strip())
        rows.append(cells)
    header, body = rows[0], rows[1:]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return out


def rst_to_markdown(text: str) -> str:
    text = _ROLE.sub(r"`\1`", text)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _BORDER.match(lines[i]):
            # header border, header, border, rows..., closing border
            j = i + 1
            borders = 1
            while j < len(lines) and borders < 3:
                if _BORDER.match(lines[j]):
                    borders += 1
                j += 1
            out += _table(lines[i:j])
            i = j
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    def on_attribute_instance(self, *, node: ast.AST | griffe.ObjectNode, attr: Any, **_: Any):
        """``x = Native[str]("doc")``: the string is the attribute's docstring."""
        if attr.docstring is not None or not isinstance(node, ast.Assign):
            return
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Subscript)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "Native"
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            # A read-only attribute read from the native handle: shown as a property.
            attr.docstring = griffe.Docstring(call.args[0].value, parent=attr)
            attr.annotation = ast.unparse(call.func.slice)
            attr.value = None
            attr.labels -= {"class-attribute", "instance-attribute"}
            attr.labels.add("property")

    def on_package(self, *, pkg: griffe.Module, **_: Any) -> None:
        seen: set[int] = set()
        defaults = _native_defaults()

        def visit(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = rst_to_markdown(obj.docstring.value)
            if isinstance(obj, griffe.Function):
                for parameter in obj.parameters:
                    parameter.default = _shown(parameter.default, defaults)
            elif isinstance(obj, griffe.Attribute):
                obj.value = _shown(obj.value, defaults)
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)  # type: ignore[arg-type]

        visit(pkg)
