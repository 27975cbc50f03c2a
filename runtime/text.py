"""What every request must pass, whatever the RPC: text that PostgreSQL can store.

PostgreSQL's text types cannot hold U+0000: a NUL that reached a query would fail it with a server
error after the call had begun (and perhaps after Stripe was called). Every service checks each
request once, at the server's edge, before any handler runs; the gateway refuses the same input
earlier, with the JSON field's name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["nul_field"]

_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_TEXT, _MAP, _MESSAGES, _ONE = range(4)


@functools.cache
def _kinds(descriptor: Descriptor) -> dict[str, int]:
    """How to look into each field of a message type that can hold text (asked once per type)."""
    kinds = {}
    for field in descriptor.fields:
        if field.type == _STRING:
            kinds[field.name] = _TEXT
        elif field.type == _MESSAGE:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                kinds[field.name] = _MAP
            else:
                kinds[field.name] = _MESSAGES if field.is_repeated else _ONE
    return kinds


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The path of the first string field (at any depth) holding a NUL character, else None."""
    kinds = _kinds(message.DESCRIPTOR)
    for field, value in message.ListFields():
        kind = kinds.get(field.name)
        if kind is None:
            continue
        name = prefix + field.name
        if kind == _TEXT:
            if "\x00" in value if isinstance(value, str) else any("\x00" in text for text in value):
                return name
            continue
        if kind == _MAP:
            found = _nul_in_map(value, name)
        elif kind == _MESSAGES:
            found = next((hit for i, item in enumerate(value) if (hit := nul_field(item, f"{name}[{i}]."))), None)
        else:
            found = nul_field(value, name + ".")
        if found is not None:
            return found
    return None


def _nul_in_map(entries: Mapping[Any, Any], name: str) -> str | None:
    for key, value in entries.items():
        if isinstance(key, str) and "\x00" in key:
            return name
        if isinstance(value, str):
            if "\x00" in value:
                return f"{name}.{key}"
        elif isinstance(value, Message) and (hit := nul_field(value, f"{name}.{key}.")):
            return hit
    return None
