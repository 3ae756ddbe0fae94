"""Every relative link in README.md and docs/*.md leads to a file of the repository.

Inline links and images (``[text](path)``, ``![alt](path)``) and reference definitions
(``[name]: path``); web addresses, mail addresses and in-page anchors are not files.
A ``#fragment`` after a path is dropped: the file must exist, the heading is not checked.
Code spans and fenced code blocks are skipped (they show syntax, not links).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")


def links(text: str) -> list[str]:
    """The link targets of a Markdown text that should be files (relative paths)."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = _INLINE.findall(text) + _REFERENCE.findall(text)
    return [t for t in targets if not _EXTERNAL.match(t)]


def test_the_documents_are_found() -> None:
    names = [p.relative_to(ROOT).as_posix() for p in DOCUMENTS]
    assert "README.md" in names and "docs/architecture.md" in names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(document: Path) -> None:
    broken = []
    for target in links(document.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (document.parent / path).exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)}: links to nothing: {broken}"


def test_the_link_reader() -> None:
    text = (
        '[a](docs/x.md) ![img](y.svg "title") [web](https://e.org) [top](#usage)\n'
        "[ref]: ../z.md\n`[not](code.md)`\n```\n[nor](fenced.md)\n```\n[mail](mailto:a@b.c)\n"
        "[part](deploy.md#metrics-optional)\n"
    )
    assert links(text) == ["docs/x.md", "y.svg", "deploy.md#metrics-optional", "../z.md"]
