"""A local Slack for `make run`: what Banking posts to its incoming webhook lands in `.run/slack/`.

`python -m stack.slack` (or `make slack`) prints the messages received so far, oldest first;
`python -m stack.slack serve --port P --dir D` is the sink the launcher starts when no
`SLACK_WEBHOOK_URL` is set. It answers like Slack: 200 `ok` for a JSON body, 400 otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_PATH = "/services/local-sink"
_MAX_BODY = 1 << 20


def messages_dir(run_dir: Path) -> Path:
    return run_dir / "slack"


def _handler(directory: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, _MAX_BODY))
            try:
                message = orjson.loads(body)
            except orjson.JSONDecodeError:
                message = None
            if self.path != WEBHOOK_PATH or not isinstance(message, dict):
                self._answer(404 if self.path != WEBHOOK_PATH else 400, b"invalid_payload")
                return
            with lock:  # names sort in arrival order
                name = f"{time.time_ns()}.json"
                (directory / f".{name}").write_bytes(orjson.dumps(message, option=orjson.OPT_INDENT_2))
                (directory / f".{name}").rename(directory / name)
            self._answer(200, b"ok")

        def do_GET(self) -> None:
            self._answer(200 if self.path == "/health" else 404, b"ok" if self.path == "/health" else b"not found")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the messages are in the directory; nothing else to say

    return Sink


def serve(port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(directory))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"slack sink listening on http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def received(directory: Path) -> list[dict[str, Any]]:
    """The messages the sink took, oldest first."""
    if not directory.is_dir():
        return []
    return [orjson.loads(path.read_bytes()) for path in sorted(directory.glob("[0-9]*.json"))]


def render(message: dict[str, Any]) -> str:
    """What Slack would show: each block's text, else the `text` fallback."""
    texts = [
        str(block["text"]["text"])
        for block in message.get("blocks") or []
        if isinstance(block, dict) and isinstance(block.get("text"), dict) and "text" in block["text"]
    ]
    return "\n".join(texts) if texts else str(message.get("text", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.slack", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("STACK_RUN_DIR") or ROOT / ".run"))
    commands = parser.add_subparsers(dest="command")
    sink = commands.add_parser("serve", help="run the sink (the launcher does)")
    sink.add_argument("--port", type=int, default=0)
    sink.add_argument("--dir", type=Path, help="where messages land (default <run-dir>/slack)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.dir or messages_dir(args.run_dir))
        return 0
    messages = received(messages_dir(args.run_dir))
    if not messages:
        print(f"no Slack message yet in {messages_dir(args.run_dir)}")
    for number, message in enumerate(messages, 1):
        print(f"--- message {number}\n{render(message)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
