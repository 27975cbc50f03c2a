"""A table router for `/v1/...` paths: O(1) bucket by (method, segment count), then a short scan."""

from __future__ import annotations

from collections.abc import Iterable

from .context import Handler

Route = tuple[str, str, Handler]


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._table: dict[tuple[str, int], list[tuple[tuple[str | None, ...], Handler]]] = {}
        for method, pattern, handler in routes:
            segments = tuple(None if s == "{}" else s for s in pattern.strip("/").split("/"))
            self._table.setdefault((method, len(segments)), []).append((segments, handler))

    def match(self, method: str, path: str) -> tuple[Handler, list[str]] | None:
        parts = path.strip("/").split("/")
        for segments, handler in self._table.get((method, len(parts)), ()):
            args: list[str] = []
            for expected, actual in zip(segments, parts, strict=True):
                if expected is None:
                    if not actual:
                        break
                    args.append(actual)
                elif expected != actual:
                    break
            else:
                return handler, args
        return None
