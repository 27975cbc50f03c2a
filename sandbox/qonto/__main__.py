"""``python -m sandbox.qonto --port 12112 [--state-file f]``: serve until SIGTERM or Ctrl-C.

Settings come from ``QONTO_SANDBOX_*`` variables (see ``QontoSandboxConfig.from_env``);
command-line options override them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys

from runtime.asgi_server import EmbeddedServer
from runtime.logs import setup_logging
from sandbox.qonto.app import create_app
from sandbox.qonto.config import QontoSandboxConfig


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.qonto", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12112)
    parser.add_argument("--state-file", help="keep state in this JSON file across restarts")
    parser.add_argument("--login", help="accepted login (default collect-sandbox)")
    parser.add_argument("--secret-key", help="accepted secret key (default sandbox-secret)")
    parser.add_argument("--webhook-url", help="subscribe this URL to transaction events")
    parser.add_argument("--webhook-secret", help="signing secret for --webhook-url")
    parser.add_argument("--rate-limit-per-10s", type=int)
    parser.add_argument("--webhook-retry-base-seconds", type=float)
    return parser.parse_args(argv)


async def _serve(config: QontoSandboxConfig, host: str, port: int) -> None:
    server = EmbeddedServer(create_app(config), host=host, port=port)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    print(f"qonto sandbox listening on {server.url}", flush=True)
    await server.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _arguments(argv)
    setup_logging("qonto-sandbox")
    try:
        config = QontoSandboxConfig.from_env()
        overrides = {
            name: value
            for name, value in {
                "state_file": args.state_file,
                "login": args.login,
                "secret_key": args.secret_key,
                "webhook_url": args.webhook_url,
                "webhook_secret": args.webhook_secret,
                "rate_limit_per_10s": args.rate_limit_per_10s,
                "webhook_retry_base_seconds": args.webhook_retry_base_seconds,
            }.items()
            if value is not None
        }
        config = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        print(f"qonto sandbox: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(config, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
