"""A serialised DOM (Chromium's ``--dump-dom``) as a small tree to query by test id.

Only what the browser tests need: elements with their tag, attributes (character
references resolved) and children, the text they hold, and a search by attribute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

#: HTML elements that never have an end tag.
VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


@dataclass
class Node:
    """One element: its tag, attributes and children (text as ``str``)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All the text inside, as a reader sees it (``textContent``)."""
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self) -> Iterator[Node]:
        """This element and every element inside it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def all(self, testid: str) -> list[Node]:
        """Every element with ``data-testid="<testid>"``."""
        return [n for n in self.walk() if n.attrs.get("data-testid") == testid]

    def one(self, testid: str) -> Node:
        """The one element with that test id (AssertionError when not exactly one)."""
        found = self.all(testid)
        assert len(found) == 1, f"{len(found)} elements with data-testid={testid!r}"
        return found[0]

    def by_tag(self, tag: str) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag]

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    """The document's tree (its root is ``#document``)."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
