"""The Tap to Pay device rules, table-driven (pure functions, no I/O)."""

from __future__ import annotations

import pytest

from runtime.errors import InvalidArgument
from services.terminal.domain import (
    ANDROID_ALTERNATIVE,
    IPHONE_ALTERNATIVE,
    AndroidDevice,
    DeviceCheck,
    OsFloor,
    applicable_floor,
    check_android,
    check_iphone,
    parse_version,
    validate_android_device,
    validate_check,
    validate_floor,
)

IOS_FLOORS = {"US": "16.7", "AU": "16.7", "GB": "16.7", "FR": "17.0", "DE": "17.0", "CA": "17.4", "CH": "17.4"}
PIXEL_8 = AndroidDevice("Pixel 8", "Google", "Pixel 8", "14", True)
PIXEL_6 = AndroidDevice("Pixel 6", "Google", "Pixel 6", "13", True)
DECERTIFIED = AndroidDevice("SM-X000", "Samsung", "Galaxy Old", "13", False)
DEVICES = {d.model_identifier.lower(): d for d in (PIXEL_8, PIXEL_6, DECERTIFIED)}


def iphone(model: str, os_version: str, country: str = "FR", is_beta: bool = False) -> tuple[bool, str, str]:
    check, version = validate_check(DeviceCheck("ios", model, os_version, country, is_beta=is_beta))
    verdict = check_iphone(check, version, IOS_FLOORS)
    return verdict.supported, verdict.reason, verdict.alternative


def android(model: str, os_version: str, floor: str = "13", is_beta: bool = False) -> tuple[bool, str, str]:
    check, version = validate_check(DeviceCheck("android", model, os_version, "", is_beta=is_beta))
    verdict = check_android(check, version, DEVICES.get(model.lower()), floor)
    return verdict.supported, verdict.reason, verdict.alternative


@pytest.mark.parametrize(
    ("model", "os_version", "country", "supported", "reason_part"),
    [
        ("iPhone14,2", "17.1", "FR", True, "supports Tap to Pay in FR"),
        ("iPhone11,2", "17.0", "FR", True, "supports"),  # iPhone XS, exactly the floor
        ("iPhone11,8", "16.7", "US", True, "supports"),  # iPhone XR in the US
        ("iPhone16,1", "18.0.1", "DE", True, "supports"),
        ("iPhone10,3", "17.1", "FR", False, "older than the iPhone XS"),  # iPhone X
        ("iPhone9,1", "16.7", "US", False, "older than the iPhone XS"),
        ("iPhone14,2", "16.7", "FR", False, "needs iOS 17.0 or later in FR"),
        ("iPhone14,2", "16.7", "US", True, "supports"),
        ("iPhone14,2", "17.3", "CA", False, "needs iOS 17.4 or later in CA"),
        ("iPhone14,2", "17.4", "CA", True, "supports"),
        ("iPhone14,2", "17.1", "BR", False, "not available in BR"),
        ("iPad13,1", "17.1", "FR", False, "not an iPhone model identifier"),
        ("iPhone 14", "17.1", "FR", False, "not an iPhone model identifier"),
        ("iPhone14,2", "17.2 beta", "FR", False, "beta"),
        ("iPhone14,2", "18.0b1", "FR", False, "beta"),
        ("iPhone14,2", "17.2-beta3", "FR", False, "beta"),
    ],
)
def test_iphone_rules(model: str, os_version: str, country: str, supported: bool, reason_part: str) -> None:
    ok, reason, alternative = iphone(model, os_version, country)
    assert ok is supported
    assert reason_part in reason
    assert bool(alternative) is not supported


def test_iphone_beta_flag_is_refused() -> None:
    assert iphone("iPhone15,2", "17.5", is_beta=True)[0] is False


def test_old_iphone_alternative_names_newer_phones_and_readers() -> None:
    assert iphone("iPhone10,3", "17.1")[2] == IPHONE_ALTERNATIVE


@pytest.mark.parametrize(
    ("model", "os_version", "floor", "supported", "reason_part"),
    [
        ("Pixel 8", "14", "13", True, "Pixel 8 on Android 14 supports"),
        ("pixel 8", "14.0", "13", True, "supports"),  # model match is case-insensitive
        ("Pixel 8", "13", "13", False, "needs Android 14 or later"),  # the model's own floor
        ("Pixel 6", "13", "13", True, "supports"),
        ("Pixel 6", "13", "14", False, "needs Android 14 or later"),  # the global floor wins
        ("Pixel 6", "12", "11", False, "needs Android 13 or later"),
        ("Moto X", "14", "13", False, "not on the list of certified"),
        ("SM-X000", "14", "13", False, "not on the list of certified"),  # listed, certification withdrawn
        ("Pixel 8", "15 beta", "13", False, "beta"),
    ],
)
def test_android_rules(model: str, os_version: str, floor: str, supported: bool, reason_part: str) -> None:
    ok, reason, alternative = android(model, os_version, floor)
    assert ok is supported
    assert reason_part in reason
    assert bool(alternative) is not supported


def test_uncertified_android_suggests_an_alternative() -> None:
    assert android("Moto X", "14")[2] == ANDROID_ALTERNATIVE


@pytest.mark.parametrize(
    ("platform", "os_version", "code"),
    [
        ("windows", "11", "unsupported_platform"),
        ("", "17.1", "unsupported_platform"),
        ("ios", "", "invalid_os_version"),
        ("ios", "seventeen", "invalid_os_version"),
        ("ios", "17.1 (21B74)", "invalid_os_version"),
        ("android", "14..1", "invalid_os_version"),
        ("android", "v14", "invalid_os_version"),
    ],
)
def test_unknown_platform_or_malformed_version_is_400(platform: str, os_version: str, code: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_check(DeviceCheck(platform, "iPhone14,2", os_version, "FR"))
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("text", "parts", "beta"),
    [
        ("17", (17, 0, 0), False),
        ("17.1", (17, 1, 0), False),
        ("17.1.2", (17, 1, 2), False),
        (" 16.7 ", (16, 7, 0), False),
        ("17.2 beta", (17, 2, 0), True),
        ("17.2 Beta 2", (17, 2, 0), True),
        ("18.0b1", (18, 0, 0), True),
        ("15-beta", (15, 0, 0), True),
    ],
)
def test_parse_version(text: str, parts: tuple[int, int, int], beta: bool) -> None:
    version = parse_version(text)
    assert version.parts == parts and version.beta is beta


def test_platform_and_country_are_normalised() -> None:
    check, _ = validate_check(DeviceCheck(" iOS ", "iPhone14,2", "17.1", "fr"))
    assert check.platform == "ios" and check.country == "FR"


def test_floor_and_device_validation() -> None:
    assert validate_floor(OsFloor("ios", "fr", "17.0")) == OsFloor("ios", "FR", "17.0")
    assert validate_floor(OsFloor("android", "", "14")).country == "*"
    with pytest.raises(InvalidArgument):
        validate_floor(OsFloor("symbian", "FR", "1"))
    with pytest.raises(InvalidArgument):
        validate_floor(OsFloor("ios", "", "17.0"))
    with pytest.raises(InvalidArgument):
        validate_floor(OsFloor("ios", "FR", "18 beta"))
    device = validate_android_device(AndroidDevice(" Pixel 9a ", "Google", "Pixel 9a", "15.0", True))
    assert device.model_identifier == "Pixel 9a" and device.min_os_version == "15.0"
    with pytest.raises(InvalidArgument):
        validate_android_device(AndroidDevice("", "Google", "", "15", True))


@pytest.mark.parametrize(
    ("platform", "country", "expected"),
    [
        ("ios", "FR", "17.4"),
        ("ios", "BR", None),  # not offered: no global iOS floor
        ("android", "FR", "14"),
        ("android", "BR", "13"),  # the global floor
    ],
)
def test_the_floor_that_applies_in_a_country(platform: str, country: str, expected: str | None) -> None:
    floors = {"ios": {"FR": "17.4"}, "android": {"*": "13", "FR": "14"}}[platform]
    assert applicable_floor(floors, platform, country) == expected
