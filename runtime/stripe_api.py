"""The official Stripe SDK client, and one translation of its errors into domain errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import stripe
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from runtime.errors import Conflict, InvalidArgument, NotFound, Unavailable, UpstreamError
from runtime.tracing import unrecorded_parent

_tracer = trace.get_tracer("runtime.stripe_api")


class QuietHTTPXClient(stripe.HTTPXClient):
    """`stripe.HTTPXClient` handing httpx the encoded body as `content=` (the SDK's `data=` string
    makes httpx emit a DeprecationWarning, an error under `filterwarnings = error`)."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, str | bytes) and data:
            kwargs["content"] = data
        return [args, kwargs]


class AsyncStripeHTTPClient(stripe.AIOHTTPClient):
    """The SDK's aiohttp client with an `aiohttp.ClientTimeout` (a bare number is deprecated),
    and a CLIENT span per attempt (method, host and path: no query, no headers).

    aiohttp costs about a third of httpx's CPU per call, which is most of a payment's cost in
    Payments (`bench/bench_payments.py`). Async only; the session opens on first use, in the
    running loop. No span is built under an unrecorded parent (parent-based sampling).
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=aiohttp.ClientTimeout(total=timeout))

    async def request_stream_async(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        if unrecorded_parent():
            return await super().request_stream_async(method, url, headers, post_data)
        target = urlsplit(url)
        attributes: dict[str, str | int] = {
            "http.request.method": method.upper(),
            "server.address": target.hostname or "",
            "server.port": target.port or (443 if target.scheme == "https" else 80),
            "url.path": target.path,
        }
        with _tracer.start_as_current_span(method.upper(), kind=SpanKind.CLIENT, attributes=attributes) as span:
            answer = await super().request_stream_async(method, url, headers, post_data)
            span.set_attribute("http.response.status_code", answer[1])
            return answer


def make_stripe_client(api_key: str, api_base: str, *, timeout: float = 10.0) -> stripe.StripeClient:
    """A client for Stripe or the sandbox (only `api_base` differs); async methods over aiohttp.

    Close it with `close_stripe_client` in the loop that used it.
    """
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base, "connect": api_base, "files": api_base},
        http_client=AsyncStripeHTTPClient(timeout),
        max_network_retries=2,
    )


@contextlib.contextmanager
def stripe_errors(what: str = "Stripe") -> Iterator[None]:
    """Maps SDK failures: unreachable → 503, Stripe's fault → 502, the request's fault → 4xx.

    Card errors are not caught here: payments records declines itself.
    """
    try:
        yield
    except stripe.CardError:
        raise
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise Unavailable(f"{what} is unavailable, try again later", "stripe_unavailable") from error
    except stripe.PermissionError as error:
        # 403 account_invalid: the connected account left the platform (access revoked, deleted).
        raise Conflict(f"{what} gives no access to this account", "stripe_account_inaccessible") from error
    except stripe.IdempotencyError as error:
        raise Conflict(
            f"{what} refused a replayed request: {error.user_message or ''}", "stripe_idempotency"
        ) from error
    except stripe.InvalidRequestError as error:
        code = error.code or ""
        if code == "resource_missing":
            raise NotFound(f"{what} object not found", "stripe_resource_missing") from error
        if error.http_status and error.http_status >= 500:
            raise Unavailable(f"{what} is unavailable, try again later", "stripe_unavailable") from error
        raise InvalidArgument(
            error.user_message or f"{what} refused the request", f"stripe_{code or 'invalid_request'}"
        ) from error
    except stripe.APIError as error:
        if error.http_status is None or error.http_status >= 500:
            raise Unavailable(f"{what} is unavailable, try again later", "stripe_unavailable") from error
        raise UpstreamError(f"{what} answered with an error", "stripe_error") from error
    except stripe.StripeError as error:
        raise UpstreamError(f"{what} answered with an error", "stripe_error") from error


async def close_stripe_client(client: stripe.StripeClient) -> None:
    """Closes the client's HTTP connections (at service shutdown)."""
    http_client = getattr(getattr(client, "_requestor", None), "_client", None)
    if isinstance(http_client, AsyncStripeHTTPClient):
        if http_client._cached_session is not None:  # never used: no session to close
            await http_client.close_async()
    elif isinstance(http_client, stripe.HTTPXClient):
        await http_client.close_async()
