"""`REPLICAS=2 make run`: two processes of each service and two gateways; callers balance across them
(gRPC round-robin over the comma-separated `<SERVICE>_ADDR`), the platform works through either
gateway, and the daily report asked of both banking replicas at once reaches Slack once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from bench.mixed_load import CHAOS_ENV, MixedLoad, stack_status
from bench.stacks import ADMIN, running_stack
from runtime.config import SERVICES
from runtime.embedded_pg import start_embedded_postgres

# Ten Python processes start (about 1.2 s of CPU each): 66 s measured on 2 busy shared cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class _Slack(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Slack", (_Slack,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/report", received
    finally:
        server.shutdown()
        server.server_close()


def _connected_ports(pid: int) -> set[int]:
    return {c.raddr.port for c in psutil.Process(pid).net_connections("tcp") if c.raddr and c.status == "ESTABLISHED"}


async def _exercise(stack: dict[str, object], dsn: str) -> None:
    gateways = [str(g) for g in stack["gateways"]]  # type: ignore[attr-defined]
    async with MixedLoad(gateways, str(stack["sandboxes"]["stripe"]), *ADMIN) as load:  # type: ignore[index]
        await load.setup()
        for _ in range(4):
            await asyncio.gather(load.sell(), load.sell(), load.offline_batch())
        await load.settle()
        counts = await load.verify(dsn)
    assert counts["sales"] == 8 and not load.tally.seen, load.tally.seen


def test_two_replicas_of_everything_balance_and_send_the_report_once(
    tmp_path: Path, slack: tuple[str, list[bytes]]
) -> None:
    slack_url, received = slack
    postgres = start_embedded_postgres(tmp_path / "pg")
    env = {
        "DATABASE_URL": postgres.url,
        "REPLICAS": "2",
        "SLACK_WEBHOOK_URL": slack_url,
        "DAILY_REPORT_ENABLED": "false",
        **CHAOS_ENV,
    }
    try:
        with running_stack(env) as stack:
            run_dir = Path(str(stack["run_dir"]))
            status = stack_status(run_dir)
            for name in (*SERVICES, "gateway"):
                assert {name, f"{name}-2"} <= status.keys()
            gateways = stack["gateways"]
            assert isinstance(gateways, list) and len(set(gateways)) == 2

            asyncio.run(_exercise(stack, postgres.url))

            # Round-robin keeps a connection to every replica (pick-first would hold one).
            for gateway in ("gateway", "gateway-2"):
                ports = _connected_ports(int(status[gateway]["pid"]))
                for service in SERVICES:
                    replicas = {int(status[n]["url"].rsplit(":", 1)[1]) for n in (service, f"{service}-2")}
                    assert replicas <= ports, (gateway, service, replicas, ports)

            admin = httpx.post(
                f"{gateways[0]}/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]}, timeout=10
            ).json()["access_token"]

            def send(gateway: str) -> httpx.Response:
                return httpx.post(
                    f"{gateway}/v1/reports/daily/send",
                    headers={"Authorization": f"Bearer {admin}"},
                    json={"date": "2026-01-15"},
                    timeout=30,
                )

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(send, [gateways[i % 2] for i in range(8)]))
            assert all(a.status_code in (200, 202) for a in answers), [a.text for a in answers]
            assert sum(a.json()["sent"] for a in answers) == 1, [a.json() for a in answers]
            again = send(gateways[1]).json()
            assert again["already_sent"] and not again["sent"]
            assert len(received) == 1
    finally:
        postgres.stop()
