"""The rules the protos declare on fields (`collect.common.v1.rules`), read from the descriptors.

One place for what a value may be: the gateway checks JSON against these rules before any call
(gateway/transcoder.py), every service's runtime checks each request message against them
(runtime/server.py), and the OpenAPI document is written from them. Named formats (`format:`)
are defined here once: their pattern and the words that describe them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from collect.common.v1 import options_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from runtime.dates import DAY, INSTANT
from runtime.errors import FieldError, InvalidArgument
from runtime.proto import enum_value_name


@dataclass(frozen=True)
class Format:
    pattern: str
    hint: str


# The named formats a field may declare (`rules.format`); "date-time" is every Timestamp's.
FORMATS = {
    "email": Format(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}", "an e-mail address"),
    "currency": Format(r"[a-z]{3}", "a three-letter ISO 4217 code in lower case"),
    "country": Format(r"[A-Za-z]{2}", "a two-letter ISO 3166-1 country code"),
    "date": Format(DAY.pattern, "a YYYY-MM-DD day"),
    # A bound a list and the stats both take: a day (the organisation's, inclusive) or an instant.
    "date_or_date_time": Format(
        f"{DAY.pattern}|{INSTANT.pattern}", "a YYYY-MM-DD day (the organisation's, inclusive) or an RFC 3339 timestamp"
    ),
}


@dataclass(frozen=True)
class Rules:
    """A field's declared rules, resolved (enum names listed, format's pattern and hint applied)."""

    required: bool = False
    min_len: int = 0
    max_len: int = 0
    pattern: re.Pattern[str] | None = None
    hint: str = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    format: str = ""
    max_items: int = 0
    inline: bool = False
    nullable: bool = False
    omit_empty: bool = False
    header: str = ""
    lenient: bool = False
    server_only: bool = False
    example: str = ""
    default: str = ""
    output_only: bool = False
    json: bool = False

    @property
    def validates(self) -> bool:
        """Whether a value can break these rules (others only say how the field reads in JSON)."""
        return (
            bool(self.min_len or self.max_len or self.pattern or self.choices or self.max_items)
            or self.minimum is not None
            or self.maximum is not None
        )

    def problem(self, value: Any) -> str | None:
        """What is wrong with a present, non-empty value, or None (the checks both sides share)."""
        if isinstance(value, str):
            if self.max_len and len(value) > self.max_len:
                return f"must be at most {self.max_len} characters"
            if self.min_len and len(value) < self.min_len:
                return f"must be at least {self.min_len} characters"
            if self.choices and value not in self.choices:
                return f"must be one of {', '.join(self.choices)}"
            if self.pattern is not None and not self.pattern.fullmatch(value):
                return f"must be {self.hint}" if self.hint else "has an invalid format"
        elif isinstance(value, int) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum}"
        return None


NO_RULES = Rules()


def map_value_rules(map_rules: Rules) -> Rules:
    """What each value of a map must be: the map field's bounds and pattern (its `max_items`
    counts the keys)."""
    return Rules(
        min_len=map_rules.min_len,
        max_len=map_rules.max_len,
        pattern=map_rules.pattern,
        hint=map_rules.hint,
        minimum=map_rules.minimum,
        maximum=map_rules.maximum,
    )


def enum_names(enum: EnumDescriptor) -> tuple[str, ...]:
    """An enum's values as the API spells them ("card_present"), without the unspecified one."""
    return tuple(enum_value_name(enum, value.name) for value in enum.values if value.number != 0)


@functools.cache
def _enum_by_name(full_name: str) -> EnumDescriptor:
    from google.protobuf import descriptor_pool

    return descriptor_pool.Default().FindEnumTypeByName(full_name)


def rules(field: FieldDescriptor) -> Rules:
    """The field's declared rules (NO_RULES when it declares none)."""
    return _rules(field)


@functools.cache
def _rules(field: FieldDescriptor) -> Rules:
    options = field.GetOptions()
    if not options.HasExtension(options_pb2.rules):
        return NO_RULES
    declared = options.Extensions[options_pb2.rules]
    named = FORMATS.get(declared.format)
    pattern = declared.pattern or (named.pattern if named else "")
    return Rules(
        required=declared.required,
        min_len=declared.min_len,
        max_len=declared.max_len,
        pattern=re.compile(pattern) if pattern else None,
        hint=declared.hint or (named.hint if named else ""),
        minimum=declared.minimum if declared.HasField("minimum") else None,
        maximum=declared.maximum if declared.HasField("maximum") else None,
        choices=enum_names(_enum_by_name(declared.enum)) if declared.enum else (),
        format=declared.format,
        max_items=declared.max_items,
        inline=declared.inline,
        nullable=declared.nullable,
        omit_empty=declared.omit_empty,
        header=declared.header,
        lenient=declared.lenient,
        server_only=declared.server_only,
        example=declared.example,
        default=declared.default,
        output_only=declared.output_only,
        json=declared.json,
    )


def message_type(field: FieldDescriptor) -> Descriptor:
    """The message type of a message (or map) field."""
    assert field.message_type is not None, field.full_name
    return field.message_type


# --- the services' side: every request message is checked before its servicer runs ---

_Check = tuple[str, FieldDescriptor, Rules, "Descriptor | None"]


@functools.cache
def _checks(descriptor: Descriptor) -> tuple[_Check, ...]:
    """The fields of a message that declare a rule or hold messages that do (computed once)."""
    found: list[_Check] = []
    for field in descriptor.fields:
        field_rules = rules(field)
        nested = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
        if nested is not None and (nested.GetOptions().map_entry or not _checks(nested)):
            nested = None
        if field_rules.lenient:
            continue  # its items are judged one by one by the service
        if nested is not None or field_rules.validates:
            found.append((field.name, field, field_rules, nested))
    return tuple(found)


def problems(message: Message, prefix: str = "") -> list[FieldError]:
    """The declared rules a message breaks (values left empty are not judged: proto3 cannot tell
    them from absent; the gateway checks presence in JSON)."""
    errors: list[FieldError] = []
    for name, field, field_rules, nested in _checks(message.DESCRIPTOR):
        value = getattr(message, name)
        if nested is not None:
            if field.is_repeated:
                for index, item in enumerate(value):
                    errors.extend(problems(item, f"{prefix}{name}[{index}]."))
            elif message.HasField(name):
                errors.extend(problems(value, f"{prefix}{name}."))
            continue
        if field.is_repeated:
            if field_rules.max_items and len(value) > field_rules.max_items:
                errors.append(FieldError(prefix + name, f"must have at most {field_rules.max_items} items"))
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                value_rules = map_value_rules(field_rules)
                for key, item in value.items():
                    if item and (problem := value_rules.problem(item)) is not None:
                        errors.append(FieldError(f"{prefix}{name}.{key}", problem))
            else:  # each item of a repeated scalar takes the field's rules
                for index, item in enumerate(value):
                    if item and (problem := field_rules.problem(item)) is not None:
                        errors.append(FieldError(f"{prefix}{name}[{index}]", problem))
            continue
        if value and (problem := field_rules.problem(value)) is not None:
            errors.append(FieldError(prefix + name, problem))
    return errors


def check(message: Message) -> None:
    """InvalidArgument `validation_error` with every field a request message gets wrong."""
    if not _checks(message.DESCRIPTOR):
        return
    errors = problems(message)
    if errors:
        raise InvalidArgument("the request is invalid", "validation_error", errors)
