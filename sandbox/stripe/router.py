"""A table router for `/v1/...` paths: O(1) bucket by (method, segment count), then a short scan.

Each route carries the request checker of its operation in Stripe's description
(`validation.compile_operations`); a route the description does not have is refused at start.
Literal segments win over placeholders (`/v1/charges/search` before `/v1/charges/{}`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .context import Handler
from .validation import Validate

Route = tuple[str, str, Handler]
Matched = tuple[Handler, list[str], Validate]


class Router:
    def __init__(self, routes: Iterable[Route], validators: Mapping[tuple[str, str], Validate]) -> None:
        self._table: dict[tuple[str, int], list[tuple[tuple[str | None, ...], Handler, Validate]]] = {}
        self.operations: list[tuple[str, str]] = []
        for method, pattern, handler in routes:
            validate = validators.get((method, pattern))
            if validate is None:
                raise KeyError(f"{method} {pattern} is not an operation of Stripe's description")
            segments = tuple(None if s == "{}" else s for s in pattern.strip("/").split("/"))
            self._table.setdefault((method, len(segments)), []).append((segments, handler, validate))
            self.operations.append((method, pattern))
        for bucket in self._table.values():
            # Placeholders sort after literals, segment by segment (stable for equal shapes).
            bucket.sort(key=lambda entry: tuple(segment is None for segment in entry[0]))

    def match(self, method: str, path: str) -> Matched | None:
        parts = path.strip("/").split("/")
        for segments, handler, validate in self._table.get((method, len(parts)), ()):
            args: list[str] = []
            for expected, actual in zip(segments, parts, strict=True):
                if expected is None:
                    if not actual:
                        break
                    args.append(actual)
                elif expected != actual:
                    break
            else:
                return handler, args, validate
        return None
