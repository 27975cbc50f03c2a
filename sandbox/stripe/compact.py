"""Stored objects as compact bytes: their JSON, in blocks of one kind, deflated against a dictionary of that kind.

A PaymentIntent is a dict of about 50 keys (2-3 KiB of Python objects with its nested dicts);
its JSON deflated against an earlier PaymentIntent's JSON is about 110 bytes, because all but
its ids and amounts is said in the dictionary already. The first object packed of each kind
(each event type for events) is that kind's dictionary, for as long as the store lives. Objects
are packed several at a time into one stream: starting a deflate stream costs more than
compressing one object into it.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

_RAW = -15  # a bare deflate stream: no header or checksum, the store is in memory only
_LEVEL = 1  # level 6 saves a tenth of the bytes for more than twice the time
_NO_DICTIONARY = 255
BLOCK_OBJECTS = 32


class Block:
    """Up to `BLOCK_OBJECTS` objects of one kind: their ids, where each one's JSON ends, the stream."""

    __slots__ = ("data", "ends", "ids")

    def __init__(self, ids: tuple[str, ...], ends: bytes, data: bytes) -> None:
        self.ids = ids
        self.ends = ends
        self.data = data


class Codec:
    """Packs JSON into blocks and reads it back; one dictionary per kind (up to 254 of them)."""

    def __init__(self) -> None:
        self._dictionaries: list[bytes] = []
        self._index: dict[str, int] = {}
        # The last block read, unpacked: a scan reads each block's objects one after the other.
        self._last: tuple[Block, bytes] | None = None

    def _compressor(self, kind: str, first: bytes) -> tuple[int, Any]:
        index = self._index.get(kind)
        if index is None:
            index = len(self._dictionaries)
            if index >= _NO_DICTIONARY:
                index = _NO_DICTIONARY
            else:
                self._dictionaries.append(first)
            self._index[kind] = index
        if index == _NO_DICTIONARY:
            return index, zlib.compressobj(_LEVEL, zlib.DEFLATED, _RAW)
        return index, zlib.compressobj(_LEVEL, zlib.DEFLATED, _RAW, zdict=self._dictionaries[index])

    def _decompress(self, data: bytes) -> bytes:
        index = data[0]
        if index == _NO_DICTIONARY:
            decompressor = zlib.decompressobj(_RAW)
        else:
            decompressor = zlib.decompressobj(_RAW, zdict=self._dictionaries[index])
        return decompressor.decompress(memoryview(data)[1:]) + decompressor.flush()

    def pack_one(self, kind: str, raw: bytes) -> bytes:
        """`raw` alone, deflated against `kind`'s dictionary."""
        index, compressor = self._compressor(kind, raw)
        return bytes((index,)) + compressor.compress(raw) + compressor.flush()

    def raw_one(self, packed: bytes) -> bytes:
        return self._decompress(packed)

    def pack(self, kind: str, ids: list[str], raws: list[bytes]) -> Block:
        """One block of `raws` (the JSON of the objects `ids`, all of `kind`)."""
        index, compressor = self._compressor(kind, raws[0])
        ends: list[int] = []
        end = 0
        chunks = [bytes((index,))]
        for raw in raws:
            chunks.append(compressor.compress(raw))
            end += len(raw)
            ends.append(end)
        chunks.append(compressor.flush())
        return Block(tuple(ids), struct.pack(f"{len(ends)}I", *ends), b"".join(chunks))

    def raw(self, block: Block, object_id: str) -> bytes:
        """The JSON of `object_id`, one of `block`'s objects."""
        last = self._last
        if last is not None and last[0] is block:
            unpacked = last[1]
        else:
            unpacked = self._decompress(block.data)
            self._last = (block, unpacked)
        position = block.ids.index(object_id)
        start = struct.unpack_from("I", block.ends, 4 * (position - 1))[0] if position else 0
        end = struct.unpack_from("I", block.ends, 4 * position)[0]
        return unpacked[start:end]

    def unpack(self, block: Block, object_id: str) -> Any:
        return orjson.loads(self.raw(block, object_id))
