"""A griffe extension for the API reference, so that docstrings written for ``help()`` read
well as Markdown:

* doctest lines (``>>>``) in a docstring's running text, outside an ``Examples:`` section,
  are rendered as code blocks instead of Markdown (where ``x[-1]["key"]`` would look like a
  reference link);
* Sphinx roles (``:class:`nirjax.Semantics```, ``:func:`~nirjax.compile```) become code
  spans (the reference does not cross-link them).

Used by ``mkdocs.yml`` (``extensions: [docs/griffe_doctests.py:DoctestFences]``).
"""

from __future__ import annotations

import re

import griffe

_PROMPT = re.compile(r"^(\s*)>>>( |$)")
_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc|const):`~?([^`]+)`")


def fence_doctests(text: str) -> str:
    """Wrap each block of doctest lines (a ``>>>`` line and the lines up to the next blank
    line) in a ```` ```pycon ```` fence, at the block's indentation."""
    lines = text.split("\n")
    out, i = [], 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else _PROMPT.match(line)
        if m is None:
            out.append(line)
            i += 1
            continue
        indent = m.group(1)
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        out.append(f"{indent}```pycon")
        out.extend(block)
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctest blocks of every docstring (see the module docstring)."""

    def on_instance(self, *, node, obj, agent, **kwargs) -> None:  # noqa: D102 - griffe hook
        if obj.docstring is None:
            return
        value = obj.docstring.value
        if ">>>" in value:
            value = fence_doctests(value)
        obj.docstring.value = _ROLE.sub(lambda m: f"`{m.group(1)}`", value)
