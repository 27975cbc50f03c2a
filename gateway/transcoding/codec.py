"""JSON ⇄ proto for one message type, built once from its descriptor and its declared rules.

Reading (JSON body, query string, path) checks every field before any call and collects the
errors under their field paths (`transactions[3].amount`); writing turns a message into the
contract's JSON: int64 as JSON numbers, names from `json_name`, Timestamps as RFC 3339 (null when
unset), `nullable` strings null when empty, `inline` messages merged, `header` fields left out.
The writer is generated Python code (one function per message type), as fast as a hand-written one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.http import INT64_MAX, INT64_MIN, has_control_characters, rfc3339
from runtime.contract import Rules, enum_names, map_value_rules, message_type, rules
from runtime.dates import parse_day, parse_day_or_instant, parse_instant
from runtime.errors import FieldError, InvalidArgument
from runtime.proto import enum_value_name, from_timestamp

# What the gateway accepts of any text without a declared bound, and of any map or list.
DEFAULT_MAX_LEN = 500
DEFAULT_MAX_ITEMS = 500
MAP_KEY_MAX_LEN = 40
DEFAULT_MAP_MAX_ITEMS = 50
TIMESTAMP = "google.protobuf.Timestamp"

_T = FieldDescriptor
_INT_BOUNDS = {
    _T.TYPE_INT64: (INT64_MIN, INT64_MAX),
    _T.TYPE_SINT64: (INT64_MIN, INT64_MAX),
    _T.TYPE_SFIXED64: (INT64_MIN, INT64_MAX),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
}
_FLOATS = (_T.TYPE_DOUBLE, _T.TYPE_FLOAT)
_BAD = object()


def json_name(proto_field: FieldDescriptor) -> str:
    """The field's name in the contract's JSON: its proto name (snake_case), or the `json_name` it
    declares (protoc fills json_name with the lowerCamelCase default, which the contract never uses)."""
    default = "".join(
        part if i == 0 else part[:1].upper() + part[1:] for i, part in enumerate(proto_field.name.split("_"))
    )
    return proto_field.name if proto_field.json_name == default else proto_field.json_name


@dataclass(frozen=True)
class Slot:
    """One JSON name of a message, read into `name` (of the inline field `parent`, if any)."""

    json: str
    name: str
    field: FieldDescriptor
    rules: Rules
    parent: str | None = None
    choices: tuple[str, ...] = ()
    # Worked out once from the descriptor (reading a request looks at them for every field).
    is_map: bool = dataclasses.field(init=False)
    repeated: bool = dataclasses.field(init=False)
    message: Descriptor | None = dataclasses.field(init=False)
    is_text: bool = dataclasses.field(init=False)
    scalar: bool = dataclasses.field(init=False)  # one value set by setattr (not a Timestamp)

    def __post_init__(self) -> None:
        kind = self.field.message_type
        is_map = kind is not None and kind.GetOptions().map_entry
        message = None if kind is None or kind.full_name == TIMESTAMP or is_map else kind
        text = self.field.type in (_T.TYPE_STRING, _T.TYPE_ENUM) or (kind is not None and message is None)
        object.__setattr__(self, "is_map", is_map)
        object.__setattr__(self, "repeated", self.field.is_repeated and not is_map)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "is_text", text)
        object.__setattr__(self, "scalar", kind is None and not self.field.is_repeated)


@functools.cache
def slots(descriptor: Descriptor) -> tuple[Slot, ...]:
    """The message's JSON names, inline fields flattened (server-only fields left out)."""
    found: list[Slot] = []
    for proto_field in descriptor.fields:
        field_rules = rules(proto_field)
        if field_rules.server_only or field_rules.header or field_rules.output_only or field_rules.json:
            continue
        if field_rules.inline and proto_field.message_type is not None:
            found.extend(
                Slot(s.json, s.name, s.field, s.rules, proto_field.name, s.choices)
                for s in slots(proto_field.message_type)
            )
            continue
        kind = proto_field.enum_type
        names = enum_names(kind) if kind is not None else field_rules.choices
        found.append(Slot(json_name(proto_field), proto_field.name, proto_field, field_rules, None, names))
    return tuple(found)


# --- reading ---


@dataclass
class Reading:
    """Errors of one request, collected across path, query, header and body."""

    errors: list[FieldError] = field(default_factory=list)

    def fail(self, path: str, message: str) -> object:
        self.errors.append(FieldError(path, message))
        return _BAD


def read_object(
    descriptor: Descriptor,
    data: Mapping[str, Any],
    target: Message,
    reading: Reading,
    prefix: str = "",
    *,
    from_text: bool = False,
    skip: frozenset[str] = frozenset(),
    only: frozenset[str] | None = None,
) -> None:
    """Fills `target` from a JSON object (or, `from_text`, query/path strings); `skip` names
    (path parameters) are not read, `only` reads just those."""
    for slot in slots(descriptor):
        if slot.json in skip or (only is not None and slot.json not in only):
            continue
        raw = data.get(slot.json)
        text = from_text
        if raw is None:
            if slot.rules.required:
                reading.fail(prefix + slot.json, "is required")  # null or left out
            elif not from_text and slot.json in data and not slot.rules.nullable:
                # JSON null is taken as absent only where the contract answers null itself.
                reading.fail(prefix + slot.json, "must not be null")
                continue
            if not slot.rules.default:
                continue
            raw, text = slot.rules.default, True
        holder = target if slot.parent is None else getattr(target, slot.parent)
        _read_field(slot, raw, holder, reading, prefix + slot.json, text)


def _read_field(slot: Slot, raw: Any, holder: Message, reading: Reading, path: str, from_text: bool) -> None:
    if slot.scalar:  # most fields: checked and set at once
        value = _scalar(slot, raw, reading, path, from_text)
        if value is not _BAD:
            setattr(holder, slot.name, value)
        return
    limit = slot.rules.max_items or (DEFAULT_MAP_MAX_ITEMS if slot.is_map else DEFAULT_MAX_ITEMS)
    if slot.is_map:
        if not isinstance(raw, dict):
            reading.fail(path, "must be an object")
            return
        if len(raw) > limit:
            reading.fail(path, f"must have at most {limit} keys")
            return
        entries = getattr(holder, slot.name)
        value_slot = map_value_slot(slot.field)
        for key, item in raw.items():
            if len(key) > MAP_KEY_MAX_LEN or has_control_characters(key):
                reading.fail(path, f"keys must be at most {MAP_KEY_MAX_LEN} characters, without control characters")
                continue
            value = _scalar(value_slot, item, reading, f"{path}.{key}", from_text)
            if value is not _BAD:
                entries[key] = value
        return
    if slot.repeated:
        items = raw if isinstance(raw, list) else ([raw] if from_text else None)
        if items is None:
            reading.fail(path, "must be an array")
            return
        if len(items) > limit:
            reading.fail(path, f"must have at most {limit} items")
            return
        values = getattr(holder, slot.name)
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            if slot.message is not None:
                if slot.rules.lenient:
                    # A bad item is sent as far as it reads; the service rejects it alone, with its reason.
                    _read_lenient(slot.message, item, values.add())
                elif not isinstance(item, dict):
                    reading.fail(item_path, "must be an object")
                else:
                    read_object(slot.message, item, values.add(), reading, item_path + ".")
            else:
                value = _scalar(slot, item, reading, item_path, from_text)
                if value is not _BAD:
                    values.append(value)
        return
    if slot.message is not None:
        if not isinstance(raw, dict):
            reading.fail(path, "must be an object")
            return
        read_object(slot.message, raw, getattr(holder, slot.name), reading, path + ".")
        return
    value = _scalar(slot, raw, reading, path, from_text)
    if value is _BAD:
        return
    if slot.field.message_type is not None:  # a Timestamp
        getattr(holder, slot.name).FromDatetime(value)
    else:
        setattr(holder, slot.name, value)


@functools.cache
def map_value_slot(map_field: FieldDescriptor) -> Slot:
    """A map's values as one slot: they take the map field's value rules (bounds, pattern)."""
    value = message_type(map_field).fields_by_name["value"]
    return Slot("value", "value", value, map_value_rules(rules(map_field)))


def _read_lenient(descriptor: Descriptor, raw: Any, target: Message) -> None:
    if not isinstance(raw, dict):
        return
    for slot in slots(descriptor):
        value = raw.get(slot.json)
        if value is not None:
            _read_field(
                slot, value, target if slot.parent is None else getattr(target, slot.parent), Reading(), "", False
            )


def _scalar(slot: Slot, raw: Any, reading: Reading, path: str, from_text: bool) -> Any:
    """One value checked against its type and rules; _BAD (with the error recorded) otherwise."""
    kind = slot.field.type
    if slot.is_text:
        if not isinstance(raw, str):
            return reading.fail(path, "must be a string")
        limit = slot.rules.max_len or DEFAULT_MAX_LEN
        if len(raw) > limit:
            return reading.fail(path, f"must be at most {limit} characters")
        if has_control_characters(raw):
            return reading.fail(path, "must not contain control characters")
        if slot.field.message_type is not None:  # Timestamp: RFC 3339 with its offset, in range
            if not raw:  # sent empty: leave it out for no bound
                return reading.fail(path, "must be an RFC 3339 timestamp")
            return _parsed(parse_instant, raw, reading, path)
        if kind == _T.TYPE_ENUM:
            if raw not in slot.choices:
                return reading.fail(path, f"must be one of {', '.join(slot.choices)}")
            return _enum_numbers(slot.field.enum_type)[raw]
        # A value sent is judged even when empty (leave the field out to take its default).
        if (problem := slot.rules.problem(raw)) is not None:
            return reading.fail(path, problem)
        if slot.rules.format == "date" and _parsed(parse_day, raw, reading, path) is _BAD:
            return _BAD
        if slot.rules.format == "date_or_date_time" and _parsed(parse_day_or_instant, raw, reading, path) is _BAD:
            return _BAD
        return raw
    if kind == _T.TYPE_BOOL:
        if from_text and raw in ("true", "false"):
            return raw == "true"
        if not isinstance(raw, bool):
            return reading.fail(path, "must be true or false")
        return raw
    if kind in _FLOATS:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return reading.fail(path, "must be a number")
        return float(raw)
    low, high = _INT_BOUNDS[kind]
    if from_text and isinstance(raw, str):
        digits = raw.removeprefix("-")
        # isdigit() alone takes "²" and other digits int() refuses.
        if not (0 < len(digits) <= 20 and digits.isascii() and digits.isdigit()):
            return reading.fail(path, "must be an integer")
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        return reading.fail(path, "must be an integer")
    minimum = max(low, slot.rules.minimum) if slot.rules.minimum is not None else low
    maximum = min(high, slot.rules.maximum) if slot.rules.maximum is not None else high
    if raw < minimum:
        return reading.fail(path, f"must be at least {minimum}")
    if raw > maximum:
        return reading.fail(path, f"must be at most {maximum}")
    return raw


@functools.cache
def _enum_numbers(enum: EnumDescriptor | None) -> dict[str, int]:
    assert enum is not None
    return {enum_value_name(enum, value.name): value.number for value in enum.values if value.number}


def _parsed(parse: Callable[[str, str], Any], raw: str, reading: Reading, path: str) -> Any:
    try:
        value = parse(raw, path)
    except InvalidArgument as error:
        reading.errors.extend(error.fields)
        return _BAD
    return _BAD if value is None else value


# --- writing ---


def _timestamp(stamp: Any) -> str | None:
    return rfc3339(from_timestamp(stamp))


def _json(text: str) -> Any:
    return orjson.loads(text) if text else None


@functools.cache
def writer(descriptor: Descriptor) -> Callable[[Message], dict[str, Any]]:
    """The function writing a message of this type as the contract's JSON object."""
    namespace: dict[str, Any] = {"_ts": _timestamp, "_json": _json}
    entries: list[str] = []  # written as one dict literal, the fastest way to build it
    lines: list[str] = []
    for proto_field in descriptor.fields:
        field_rules = rules(proto_field)
        if field_rules.header or field_rules.server_only:
            continue
        name, key = proto_field.name, repr(json_name(proto_field))
        access = f"m.{name}" if name.isidentifier() else f"getattr(m, {name!r})"
        kind = proto_field.message_type
        if field_rules.inline and kind is not None:
            namespace[f"w_{name}"] = writer(kind)
            lines.append(f"    d.update(w_{name}({access}))")
            continue
        expression = _value(proto_field, field_rules, access, namespace)
        if field_rules.omit_empty:
            lines.append(f"    v = {access}")
            lines.append(f"    if v: d[{key}] = {expression.replace(access, 'v')}")
        else:
            entries.append(f"        {key}: {expression},")
    source = ["def write(m):", "    d = {", *entries, "    }", *lines, "    return d"]
    exec("\n".join(source), namespace)
    return namespace["write"]  # type: ignore[no-any-return]


def _value(proto_field: FieldDescriptor, field_rules: Rules, access: str, namespace: dict[str, Any]) -> str:
    kind = proto_field.message_type
    name = proto_field.name
    if kind is not None and kind.GetOptions().map_entry:
        value_type = kind.fields_by_name["value"].message_type
        if value_type is None:
            return f"dict({access})"
        namespace[f"w_{name}"] = writer(value_type)
        return f"{{k: w_{name}(x) for k, x in {access}.items()}}"
    if proto_field.enum_type is not None:
        names = dict(
            zip([v.number for v in proto_field.enum_type.values[1:]], enum_names(proto_field.enum_type), strict=False)
        )
        namespace[f"e_{name}"] = names
        empty = "None" if field_rules.nullable else '""'
        item = f"e_{name}.get({{}}, {empty})"
    elif kind is not None and kind.full_name == TIMESTAMP:
        item = "_ts({})"
    elif field_rules.json:
        item = "_json({})"
    elif kind is not None:
        namespace[f"w_{name}"] = writer(kind)
        item = f"w_{name}({{}})"
    elif field_rules.nullable:
        item = "({} or None)"
    else:
        item = "{}"
    if proto_field.is_repeated:
        return f"[{item.format('x')} for x in {access}]" if item != "{}" else f"list({access})"
    if proto_field.has_presence and kind is None and proto_field.containing_oneof is not None:
        # proto3 `optional`: null when not set.
        return f"({item.format(access)} if m.HasField({name!r}) else None)"
    if kind is not None and kind.full_name != TIMESTAMP and field_rules.nullable:
        return f"({item.format(access)} if m.HasField({name!r}) else None)"
    return item.format(access)
