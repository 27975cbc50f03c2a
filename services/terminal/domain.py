"""Locations, readers and the Tap to Pay device rules; no I/O.

Beta detection: an OS version is a beta when the app says so (`is_beta`) or when the version
text carries a beta marker after the number: `17.2 beta`, `17.2-beta3`, `18.0b1`, `15 Beta 2`.
Betas are always refused (Stripe does not support Tap to Pay on beta OS releases). Any other
text after the number (e.g. `17.1 (21B74)` is not accepted) makes the version malformed → 400.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from collect.terminal.v1 import terminal_pb2

from runtime.addresses import Address, address_errors
from runtime.contract import enum_names
from runtime.errors import FieldError, InvalidArgument

# The proto's closed set (terminal.proto, Platform).
PLATFORMS = enum_names(terminal_pb2.Platform.DESCRIPTOR)
IOS, ANDROID = PLATFORMS
EVERY_COUNTRY = "*"
DESTINATION = "destination"

# iPhone XS / XR are iPhone11,x; every later generation has a higher major number.
MIN_IPHONE_GENERATION = 11

READER_ALTERNATIVE = "Use a Stripe Terminal card reader (for example a WisePOS E) registered to your location."
IPHONE_ALTERNATIVE = "Use an iPhone XS or later, an NFC Android phone from the certified list, or a card reader."
ANDROID_ALTERNATIVE = "Use a certified Android phone, an iPhone XS or later, or a Stripe Terminal card reader."

_VERSION = re.compile(r"^\s*(\d{1,3}(?:\.\d{1,3}){0,3})\s*(?:[-_ ]?(beta|b)\s*\d{0,3})?\s*$", re.IGNORECASE)
_IPHONE = re.compile(r"^iPhone(\d{1,3}),(\d{1,3})$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_STATUSES = ("online", "offline")


@dataclass(frozen=True)
class Location:
    id: str
    organization_id: str
    display_name: str
    address: Address
    stripe_location_id: str
    stripe_account_id: str | None
    is_default: bool
    created_at: datetime


@dataclass(frozen=True)
class Reader:
    id: str
    organization_id: str
    location_id: str
    label: str
    stripe_reader_id: str
    stripe_account_id: str | None
    device_type: str
    serial_number: str
    status: str
    last_seen_at: datetime | None
    status_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class AndroidDevice:
    model_identifier: str
    manufacturer: str
    marketing_name: str
    min_os_version: str
    certified: bool
    updated_at: datetime | None = None


@dataclass(frozen=True)
class OsFloor:
    platform: str
    country: str
    min_os_version: str
    updated_at: datetime | None = None


@dataclass(frozen=True)
class DeviceCheck:
    platform: str
    model: str
    os_version: str
    country: str
    manufacturer: str = ""
    is_beta: bool = False


@dataclass(frozen=True)
class Verdict:
    supported: bool
    reason: str
    alternative: str = ""


@dataclass(frozen=True)
class StripeScope:
    """Where a Terminal object lives at Stripe: on the connected account (direct) or the platform."""

    stripe_account: str | None
    metadata: dict[str, str]


def stripe_scope(charge_model: str, stripe_account_id: str, organization_id: str) -> StripeScope:
    metadata = {"organization_id": organization_id}
    if charge_model == DESTINATION:
        return StripeScope(None, metadata)
    return StripeScope(stripe_account_id, metadata)


# --- validation ---------------------------------------------------------------------------------


def request_digest(*parts: str) -> str:
    """What identifies one creation request at Stripe (its retries give the same digest)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def ensure_valid(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidArgument("the request is invalid", "validation_error", errors)


def validate_location(display_name: str, address: Address) -> list[FieldError]:
    errors: list[FieldError] = []
    if not display_name.strip() or len(display_name) > 100:
        errors.append(FieldError("display_name", "must be 1..100 characters"))
    return errors + address_errors(address)


def validate_reader(registration_code: str, label: str, location_id: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not registration_code.strip() or len(registration_code) > 100:
        errors.append(FieldError("registration_code", "must be 1..100 characters"))
    if not label.strip() or len(label) > 100:
        errors.append(FieldError("label", "must be 1..100 characters"))
    if not location_id.strip():
        errors.append(FieldError("location_id", "is required"))
    return errors


# --- versions -----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class OsVersion:
    parts: tuple[int, int, int]
    beta: bool = False

    def __str__(self) -> str:
        major, minor, patch = self.parts
        text = f"{major}.{minor}" + (f".{patch}" if patch else "")
        return text + (" beta" if self.beta else "")


def parse_version(text: str, field: str = "os_version") -> OsVersion:
    """`17`, `17.1`, `17.1.2`, optionally with a beta marker; InvalidArgument otherwise."""
    match = _VERSION.match(text or "")
    if match is None:
        raise InvalidArgument(
            f"{field} must look like 17.1 or 14 (optionally with a beta marker such as 18.0b1)",
            "invalid_os_version",
            [FieldError(field, "malformed version")],
        )
    numbers = [int(n) for n in match.group(1).split(".")][:3]
    major, minor, patch = (*numbers, 0, 0)[:3]
    return OsVersion((major, minor, patch), beta=match.group(2) is not None)


def validate_floor(floor: OsFloor) -> OsFloor:
    errors: list[FieldError] = []
    if floor.platform not in PLATFORMS:
        errors.append(FieldError("platform", "must be ios or android"))
    country = floor.country.strip().upper() or EVERY_COUNTRY
    if country != EVERY_COUNTRY and not _COUNTRY.match(country):
        errors.append(FieldError("country", "must be an ISO 3166-1 alpha-2 code or *"))
    elif country == EVERY_COUNTRY and floor.platform == IOS:
        errors.append(FieldError("country", "Tap to Pay on iPhone is available country by country: name one"))
    ensure_valid(errors)
    version = parse_version(floor.min_os_version, "min_os_version")
    if version.beta:
        raise InvalidArgument(
            "a floor cannot be a beta version", "invalid_os_version", [FieldError("min_os_version", "beta")]
        )
    return OsFloor(floor.platform, country, floor.min_os_version.strip())


def validate_android_device(device: AndroidDevice) -> AndroidDevice:
    errors: list[FieldError] = []
    model = device.model_identifier.strip()
    if not model or len(model) > 100:
        errors.append(FieldError("model_identifier", "must be 1..100 characters"))
    if len(device.manufacturer) > 100:
        errors.append(FieldError("manufacturer", "must be at most 100 characters"))
    if len(device.marketing_name) > 200:
        errors.append(FieldError("marketing_name", "must be at most 200 characters"))
    ensure_valid(errors)
    version = parse_version(device.min_os_version or "0", "min_os_version")
    if version.beta:
        raise InvalidArgument(
            "min_os_version cannot be a beta", "invalid_os_version", [FieldError("min_os_version", "beta")]
        )
    return AndroidDevice(
        model_identifier=model,
        manufacturer=device.manufacturer.strip(),
        marketing_name=device.marketing_name.strip(),
        min_os_version=(device.min_os_version or "0").strip(),
        certified=device.certified,
    )


def _short(version: OsVersion) -> str:
    major, minor, patch = version.parts
    if patch:
        return f"{major}.{minor}.{patch}"
    return f"{major}.{minor}" if minor else str(major)


# --- Tap to Pay -----------------------------------------------------------------------------------


def validate_check(check: DeviceCheck) -> tuple[DeviceCheck, OsVersion]:
    """Normalises a check request; 400 for an unknown platform or a malformed version."""
    platform = check.platform.strip().lower()
    if platform not in PLATFORMS:
        raise InvalidArgument(
            "platform must be ios or android",
            "unsupported_platform",
            [FieldError("platform", "must be ios or android")],
        )
    country = check.country.strip().upper()
    if country and not _COUNTRY.match(country):
        raise InvalidArgument(
            "country must be an ISO 3166-1 alpha-2 code", "validation_error", [FieldError("country", "invalid")]
        )
    version = parse_version(check.os_version)
    normalized = DeviceCheck(
        platform=platform,
        model=check.model.strip(),
        os_version=check.os_version.strip(),
        country=country,
        manufacturer=check.manufacturer.strip(),
        is_beta=check.is_beta or version.beta,
    )
    return normalized, version


def applicable_floor(floors: Mapping[str, str], platform: str, country: str) -> str | None:
    """The minimum OS version of `platform` in `country` (`floors`: country → version): iOS has one per
    country where Tap to Pay on iPhone is offered (none elsewhere); Android the country's, else the global one."""
    if platform == IOS:
        return floors.get(country)
    return floors.get(country) or floors.get(EVERY_COUNTRY)


def check_iphone(check: DeviceCheck, version: OsVersion, floors: Mapping[str, str]) -> Verdict:
    """iPhone XS or later, the country's minimum iOS, no beta. `floors`: country → min version."""
    model = _IPHONE.match(check.model)
    if model is None:
        return Verdict(
            False,
            f"{check.model or 'this device'} is not an iPhone model identifier (e.g. iPhone14,2); "
            "Tap to Pay on iPhone needs an iPhone XS or later",
            IPHONE_ALTERNATIVE,
        )
    if int(model.group(1)) < MIN_IPHONE_GENERATION:
        return Verdict(
            False,
            f"{check.model} is older than the iPhone XS; Tap to Pay needs an iPhone XS or later",
            IPHONE_ALTERNATIVE,
        )
    floor = floors.get(check.country)
    if floor is None:
        return Verdict(False, f"Tap to Pay on iPhone is not available in {check.country}", READER_ALTERNATIVE)
    if check.is_beta:
        return Verdict(
            False, "beta versions of iOS are not supported by Tap to Pay", "Install a release version of iOS."
        )
    minimum = parse_version(floor, "min_os_version")
    if version.parts < minimum.parts:
        return Verdict(
            False,
            f"Tap to Pay on iPhone needs iOS {floor} or later in {check.country}; this iPhone runs iOS {check.os_version}",
            f"Update to iOS {floor} or later, or use a card reader.",
        )
    return Verdict(True, f"{check.model} on iOS {check.os_version} supports Tap to Pay in {check.country}")


def check_android(check: DeviceCheck, version: OsVersion, device: AndroidDevice | None, global_floor: str) -> Verdict:
    """A certified model, at least its own minimum and the global floor, no beta."""
    name = device.marketing_name if device and device.marketing_name else check.model or "this device"
    if device is None or not device.certified:
        return Verdict(False, f"{name} is not on the list of certified Tap to Pay Android devices", ANDROID_ALTERNATIVE)
    if check.is_beta:
        return Verdict(
            False, "beta versions of Android are not supported by Tap to Pay", "Install a release version of Android."
        )
    minimum = max(parse_version(global_floor or "0").parts, parse_version(device.min_os_version or "0").parts)
    if version.parts < minimum:
        floor_text = _short(OsVersion(minimum))
        return Verdict(
            False,
            f"Tap to Pay on {name} needs Android {floor_text} or later; this phone runs Android {check.os_version}",
            f"Update to Android {floor_text} or later, or use a card reader.",
        )
    return Verdict(True, f"{name} on Android {check.os_version} supports Tap to Pay")


# --- reader events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderUpdate:
    stripe_reader_id: str
    status: str
    last_seen_at: datetime | None
    label: str | None


def reader_update(obj: Mapping[str, object]) -> ReaderUpdate | None:
    """What a `terminal.reader.*` event's object says about the reader; None when it is not a reader."""
    reader_id = obj.get("id")
    if obj.get("object") != "terminal.reader" or not isinstance(reader_id, str):
        return None
    status = obj.get("status")
    last_seen = obj.get("last_seen_at")
    seen: datetime | None = None
    if isinstance(last_seen, int | float) and not isinstance(last_seen, bool):
        seen = datetime.fromtimestamp(last_seen / 1000, UTC)  # Stripe sends milliseconds here
    label = obj.get("label")
    return ReaderUpdate(
        reader_id,
        status if isinstance(status, str) and status in _STATUSES else "unknown",
        seen,
        label if isinstance(label, str) else None,
    )
