"""Terminal locations, connection tokens, readers and the Tap to Pay device rules: served from the
HTTP mappings of protos/collect/terminal/v1/terminal.proto."""

from __future__ import annotations

from typing import Any

from collect.terminal.v1 import terminal_pb2

from gateway.transcoding import served

routes, operations = served("terminal", terminal_pb2.DESCRIPTOR.services_by_name["TerminalService"])
openapi_paths: dict[str, dict[str, Any]] = {}
