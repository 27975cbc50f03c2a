"""Stored objects as compact bytes: JSON deflated against a dictionary of their own kind.

A PaymentIntent is a dict of about 50 keys (2-3 KiB of Python objects with its nested dicts);
its JSON deflated against an earlier PaymentIntent's JSON is about 140 bytes, because all but
its ids and amounts is said in the dictionary already. The first object of each kind (each
event type for events) is that kind's dictionary, for as long as the store lives.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

_RAW = -15  # a bare deflate stream: no header or checksum, the store is in memory only
_LEVEL = 6
_NO_DICTIONARY = 255


class Codec:
    """Packs JSON-able values into bytes and back; one dictionary per `key` (up to 254 of them)."""

    def __init__(self) -> None:
        self._dictionaries: list[bytes] = []
        self._index: dict[str, int] = {}

    def pack(self, key: str, raw: bytes) -> bytes:
        """`raw` (JSON) deflated against `key`'s dictionary, which is `raw` itself the first time."""
        index = self._index.get(key)
        if index is None:
            index = len(self._dictionaries)
            if index >= _NO_DICTIONARY:
                index = _NO_DICTIONARY
            else:
                self._dictionaries.append(raw)
            self._index[key] = index
        if index == _NO_DICTIONARY:
            compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _RAW)
        else:
            compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _RAW, zdict=self._dictionaries[index])
        return bytes((index,)) + compressor.compress(raw) + compressor.flush()

    def raw(self, packed: bytes) -> bytes:
        """The JSON `packed` holds."""
        index = packed[0]
        if index == _NO_DICTIONARY:
            decompressor = zlib.decompressobj(_RAW)
        else:
            decompressor = zlib.decompressobj(_RAW, zdict=self._dictionaries[index])
        return decompressor.decompress(memoryview(packed)[1:]) + decompressor.flush()

    def unpack(self, packed: bytes) -> Any:
        return orjson.loads(self.raw(packed))
