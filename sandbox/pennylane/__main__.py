"""``python -m sandbox.pennylane --port 12113 [--state-file f] [--token t]``: serve until SIGTERM or Ctrl-C.

Settings come from ``PENNYLANE_SANDBOX_*`` variables (see ``PennylaneSandboxConfig.from_env``);
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
from sandbox.pennylane.app import create_app
from sandbox.pennylane.config import CompanyConfig, PennylaneSandboxConfig


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.pennylane", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12113)
    parser.add_argument("--state-file", help="keep state in this JSON file across restarts")
    parser.add_argument("--token", help="token of the default company (default pennylane-sandbox-token)")
    parser.add_argument("--rate-limit", type=int, help="requests per 5 s per token (default 25)")
    return parser.parse_args(argv)


async def _serve(config: PennylaneSandboxConfig, host: str, port: int) -> None:
    server = EmbeddedServer(create_app(config), host=host, port=port)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    print(f"pennylane sandbox listening on {server.url}", flush=True)
    await server.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _arguments(argv)
    setup_logging("pennylane-sandbox")
    try:
        config = PennylaneSandboxConfig.from_env()
        overrides: dict[str, object] = {}
        if args.state_file is not None:
            overrides["state_file"] = args.state_file
        if args.token is not None:
            overrides["companies"] = (CompanyConfig("Collect Platform SAS", args.token),)
        if args.rate_limit is not None:
            overrides["rate_limit"] = args.rate_limit
        config = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        print(f"pennylane sandbox: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(config, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
