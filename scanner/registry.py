"""A registry of device kinds by name: how a relay board or a source kind is plugged in.

A kind is one module that declares a value with a ``name`` (its config shape, its
bounds, its builder and its doctor probe); one line in the device package's registry
makes it known to the config loader, the builder and the doctor
(``docs/architecture.md`` has the recipe).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from scanner.errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


K = TypeVar("K", bound=Named)


class Registry(Generic[K]):
    """Kinds by name, in registration order.

    Args:
        what: what a kind is, for messages (``"relay type"``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._kinds: dict[str, K] = {}

    def register(self, kind: K) -> K:
        """Make ``kind`` known; returns it, so a module may write ``KIND = REG.register(...)``.

        Raises:
            ValueError: another kind has that name already.
        """
        if kind.name in self._kinds:
            raise ValueError(f"{self.what} {kind.name!r} is registered already")
        self._kinds[kind.name] = kind
        return kind

    def unregister(self, name: str) -> None:
        del self._kinds[name]

    @contextmanager
    def registered(self, kind: K) -> Iterator[K]:
        """``kind`` registered for the duration of a ``with`` block (tests, plug-ins)."""
        self.register(kind)
        try:
            yield kind
        finally:
            self.unregister(kind.name)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __getitem__(self, name: str) -> K:
        return self._kinds[name]

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._kinds.values()))

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def suggestion(self, name: object) -> str:
        """`` (did you mean 'x'?)`` for a near miss, else an empty string."""
        near = difflib.get_close_matches(str(name), list(self._kinds), n=1)
        return f" (did you mean {near[0]!r}?)" if near else ""

    def lookup(self, name: object, where: str) -> K:
        """The kind called ``name``.

        Raises:
            ConfigError: ``"{where}: unknown {what} ..."`` with a "did you mean".
        """
        if isinstance(name, str) and name in self._kinds:
            return self._kinds[name]
        raise ConfigError(
            f"{where}: unknown {self.what} {name!r}{self.suggestion(name)}; "
            f"expected one of {', '.join(self._kinds)}"
        )
