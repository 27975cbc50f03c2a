"""The per-request context handed to resource handlers, and small helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .state import SandboxState
from .store import StripeObject
from .wire import Params

Result = StripeObject | tuple[int, StripeObject]
Handler = Callable[..., Result]


@dataclass(slots=True)
class Ctx:
    """One API call: who it acts for (`account`), its decoded parameters, and where it was served."""

    state: SandboxState
    account: str
    params: Params
    base_url: str
    path: str

    @property
    def is_platform(self) -> bool:
        return self.account == self.state.platform_id

    def emit(self, type: str, obj: StripeObject, previous: dict[str, Any] | None = None) -> StripeObject:
        return self.state.emit(self.account, type, obj, previous)


def public(obj: StripeObject) -> StripeObject:
    """The object without sandbox-private `_fields`."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def deleted(obj: StripeObject) -> StripeObject:
    return {"id": obj["id"], "object": obj["object"], "deleted": True}
