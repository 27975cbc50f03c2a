"""Routes of this area (filled in by its issue)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []

openapi_paths: dict[str, dict[str, object]] = {}
