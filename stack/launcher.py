"""`make run`: the whole platform on one machine.

Starts PostgreSQL (embedded unless DATABASE_URL is set), provisions one role and schema per
service, starts the Stripe, Qonto and Pennylane sandboxes (unless real ones are configured), the
four services and the gateway as separate processes (REPLICAS of each, default 1: callers balance
across them), writes `.run/stack.json`, prints where to log in, and stops everything on Ctrl-C or
SIGTERM. A service, gateway or sandbox that dies is started again on the same port with backoff
(stack/supervisor.py, restarts in `.run/status.json`); only the database's loss stops the stack,
with a non-zero status.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import httpx
import orjson

from runtime.config import SERVICES
from runtime.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError, free_port, start_embedded_postgres
from runtime.migrations import service_dsn
from runtime.settings import Env, SettingsError, exit_on_settings_error
from sandbox.stripe.testing import PUBLISHABLE_KEY as SANDBOX_PUBLISHABLE_KEY
from stack.processes import Supervisor, tail
from stack.provision import provision_all
from stack.slack import WEBHOOK_PATH, messages_dir
from stack.supervisor import Healer, grpc_serving, http_ok

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_EMAIL = "admin@collect.local"
DEFAULT_ADMIN_PASSWORD = "collect-admin-123"
SANDBOX_STRIPE_KEY = "sk_test_sandbox"


class StartupError(Exception):
    pass


# Secrets the services require and have no default for (`make run` generates them once).
SERVICE_SECRETS = ("AUTH_TOKEN_SECRET", "ACCOUNTS_ENCRYPTION_KEYS", "ACCOUNTS_BLIND_INDEX_KEY")


def new_secret(name: str) -> str:
    """A fresh random value for the secret `name`, in the form its setting expects."""
    if name in ("ACCOUNTS_ENCRYPTION_KEYS", "BANKING_ENCRYPTION_KEYS"):
        return "local:" + base64.b64encode(secrets.token_bytes(32)).decode()
    if name == "ACCOUNTS_BLIND_INDEX_KEY":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(48 if name == "AUTH_TOKEN_SECRET" else 32)


def _secrets_file(run_dir: Path) -> dict[str, str]:
    """Generated once and kept in .run/ so restarts keep tokens and role passwords valid."""
    path = run_dir / "secrets.json"
    values: dict[str, str] = dict(orjson.loads(path.read_bytes())) if path.exists() else {}
    wanted = [
        *SERVICE_SECRETS,
        "QONTO_WEBHOOK_SECRET",
        "BANKING_ENCRYPTION_KEYS",
        *(f"ROLE_PASSWORD_{s.upper()}" for s in SERVICES),
    ]
    missing = {name: new_secret(name) for name in wanted if name not in values}
    if missing:  # a run directory from before a secret was added gets it too
        values.update(missing)
        path.write_bytes(orjson.dumps(values, option=orjson.OPT_INDENT_2))
        path.chmod(0o600)
    return values


def _wait(what: str, check: Any, timeout: float, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = supervisor.dead()
        if dead is not None:
            raise StartupError(
                f"{dead.name} exited with code {dead.process.returncode} during start-up:\n{tail(dead.log_path)}"
            )
        try:
            if check():
                return
        except (httpx.HTTPError, grpc.RpcError, OSError):
            pass
        time.sleep(0.2)
    raise StartupError(f"{what} did not become ready within {timeout:.0f} s")


def qonto_sandbox_arguments(port: int, state_file: Path, webhook_url: str, webhook_secret: str) -> list[str]:
    """`python -m sandbox.qonto` arguments; values joined with "=": a generated secret may start
    with "-", which argparse would take for an option."""
    return [
        f"--port={port}",
        f"--state-file={state_file}",
        f"--webhook-url={webhook_url}",
        f"--webhook-secret={webhook_secret}",
    ]


def pennylane_sandbox_arguments(port: int, state_file: Path) -> list[str]:
    """`python -m sandbox.pennylane` arguments (its default company's token: `pennylane-sandbox-token`)."""
    return [f"--port={port}", f"--state-file={state_file}"]


def _register_stripe_endpoints(stripe_url: str, key: str, gateway_url: str) -> list[str]:
    """Platform and Connect endpoints at the sandbox (replacing ours from earlier runs)."""
    from gateway.webhooks.registration import register_sandbox_endpoints
    from gateway.webhooks.routing import SUBSCRIBED_STRIPE_EVENTS
    from runtime.stripe_api import close_stripe_client, make_stripe_client

    async def register() -> list[str]:
        client = make_stripe_client(key, stripe_url)
        try:
            return await register_sandbox_endpoints(client, gateway_url, SUBSCRIBED_STRIPE_EVENTS)
        finally:
            await close_stripe_client(client)

    return asyncio.run(register())


def _stop_when_orphaned() -> int:
    """make does not pass a SIGTERM or SIGINT sent to it on to its recipe: it exits and leaves the
    launcher orphaned. Ask Linux for a SIGTERM when the parent goes; returns the parent to watch
    with getppid() where prctl is missing."""
    parent = os.getppid()
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    return parent


def main() -> int:
    env = Env()
    try:
        gateway_port = env.integer("GATEWAY_PORT", 8000)
        database_url = env.optional("DATABASE_URL")
        admin_email = env.text("PLATFORM_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
        admin_password = env.text("PLATFORM_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
        stripe_key = env.optional("STRIPE_API_KEY")
        qonto_login, qonto_secret = env.optional("QONTO_LOGIN"), env.optional("QONTO_SECRET_KEY")
        replicas = env.integer("REPLICAS", 1)
        if not 1 <= replicas <= 8:
            raise SettingsError("REPLICAS must be between 1 and 8")
    except SettingsError as error:
        exit_on_settings_error(error)
        return 2
    run_dir = Path(env.optional("STACK_RUN_DIR") or ROOT / ".run")
    run_dir.mkdir(exist_ok=True)
    supervisor = Supervisor(run_dir)
    if supervisor.kill_leftovers():
        print("stopped processes left over by an earlier run")
    generated = _secrets_file(run_dir)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    parent = _stop_when_orphaned()
    postgres: EmbeddedPostgres | None = None
    started = time.monotonic()
    try:
        if database_url is None:
            print(f"starting embedded PostgreSQL (data in {run_dir / 'pg'}) ...", flush=True)
            (run_dir / "logs").mkdir(exist_ok=True)
            postgres = start_embedded_postgres(run_dir / "pg", log_file=run_dir / "logs" / "postgres.log")
            # SIGINT: PostgreSQL's fast shutdown, as EmbeddedPostgres.stop (SIGTERM waits for clients).
            supervisor.adopt(
                "postgres", postgres.process, run_dir / "logs" / "postgres.log", postgres.url, signal.SIGINT
            )
            database_url = postgres.url
        passwords = {s: generated[f"ROLE_PASSWORD_{s.upper()}"] for s in SERVICES}
        asyncio.run(provision_all(database_url, passwords))

        base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GRPC_PORT", "GATEWAY_PORT")}
        base_env["PYTHONUNBUFFERED"] = "1"
        base_env.setdefault("BANK_SYNC_INTERVAL_SECONDS", "60")  # pull the bank every minute locally
        base_env["AUTH_TOKEN_SECRET"] = generated["AUTH_TOKEN_SECRET"]
        for name in ("ACCOUNTS_ENCRYPTION_KEYS", "ACCOUNTS_BLIND_INDEX_KEY", "BANKING_ENCRYPTION_KEYS"):
            base_env.setdefault(name, generated[name])  # keys given in the environment win
        urls: dict[str, Any] = {"sandboxes": {}, "services": {}, "metrics": {}}

        slack_webhook_url = env.optional("SLACK_WEBHOOK_URL")
        if slack_webhook_url:
            urls["slack"] = "SLACK_WEBHOOK_URL"
        else:  # a local sink: the daily report lands in .run/slack/ (`make slack` prints it)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            sink = ["-m", "stack.slack", "serve", f"--port={port}", f"--dir={messages_dir(run_dir)}"]
            supervisor.start("slack-sink", sink, base_env, url, probe=f"{url}/health")
            _wait("the Slack sink", lambda: http_ok(f"{url}/health"), 30, supervisor)
            base_env["SLACK_WEBHOOK_URL"] = f"{url}{WEBHOOK_PATH}"
            urls["slack"] = {"webhook": f"{url}{WEBHOOK_PATH}", "messages": str(messages_dir(run_dir))}

        qonto_webhook_url = f"http://127.0.0.1:{gateway_port}/webhooks/qonto"
        if qonto_login and qonto_secret:
            base_env.update(QONTO_LOGIN=qonto_login, QONTO_SECRET_KEY=qonto_secret)
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            supervisor.start(
                "qonto-sandbox",
                [
                    "-m",
                    "sandbox.qonto",
                    *qonto_sandbox_arguments(
                        port, run_dir / "qonto-sandbox.json", qonto_webhook_url, generated["QONTO_WEBHOOK_SECRET"]
                    ),
                ],
                base_env,
                url,
                probe=f"{url}/_sandbox/health",
            )
            _wait("the Qonto sandbox", lambda: http_ok(f"{url}/_sandbox/health"), 30, supervisor)
            base_env.update(QONTO_API_BASE=url, QONTO_LOGIN="collect-sandbox", QONTO_SECRET_KEY="sandbox-secret")
            base_env["QONTO_WEBHOOK_SECRETS"] = generated["QONTO_WEBHOOK_SECRET"]
            urls["sandboxes"]["qonto"] = url

        if env.optional("PENNYLANE_API_BASE") is None:  # else the real Pennylane (tokens are per entity)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            supervisor.start(
                "pennylane-sandbox",
                ["-m", "sandbox.pennylane", *pennylane_sandbox_arguments(port, run_dir / "pennylane-sandbox.json")],
                base_env,
                url,
                probe=f"{url}/_sandbox/health",
            )
            _wait("the Pennylane sandbox", lambda: http_ok(f"{url}/_sandbox/health"), 30, supervisor)
            base_env["PENNYLANE_API_BASE"] = url
            urls["sandboxes"]["pennylane"] = url

        if stripe_key and not stripe_key.startswith(SANDBOX_STRIPE_KEY):
            base_env["STRIPE_API_KEY"] = stripe_key
            print(
                "using the Stripe API with the configured key; create the webhook endpoints in the dashboard "
                "and set STRIPE_WEBHOOK_SECRETS (see README)"
            )
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            sandbox_env = dict(base_env)
            if "qonto" in urls["sandboxes"]:
                sandbox_env["STRIPE_SANDBOX_QONTO_CREDIT_URL"] = f"{urls['sandboxes']['qonto']}/_sandbox/transactions"
                sandbox_env["STRIPE_SANDBOX_QONTO_CREDIT_AUTH"] = "collect-sandbox:sandbox-secret"
            supervisor.start(
                "stripe-sandbox",
                [
                    "-m",
                    "sandbox.stripe",
                    "--port",
                    str(port),
                    "--state-file",
                    str(run_dir / "stripe-sandbox.json"),
                    "--public-url",
                    url,
                ],
                sandbox_env,
                url,
                probe=f"{url}/_sandbox/health",
            )
            _wait("the Stripe sandbox", lambda: http_ok(f"{url}/_sandbox/health"), 30, supervisor)
            base_env.update(
                STRIPE_API_BASE=url, STRIPE_API_KEY=SANDBOX_STRIPE_KEY, STRIPE_PUBLISHABLE_KEY=SANDBOX_PUBLISHABLE_KEY
            )
            webhook_secrets = _register_stripe_endpoints(url, SANDBOX_STRIPE_KEY, f"http://127.0.0.1:{gateway_port}")
            base_env["STRIPE_WEBHOOK_SECRETS"] = ",".join(webhook_secrets)
            urls["sandboxes"]["stripe"] = url

        # Fixed ports: a process started again listens where its callers already connect.
        ports = {s: [free_port() for _ in range(replicas)] for s in SERVICES}
        # A comma-separated list: callers balance across the replicas (runtime.clients).
        addresses = {f"{s.upper()}_ADDR": ",".join(f"127.0.0.1:{p}" for p in ps) for s, ps in ports.items()}
        for service in SERVICES:
            for replica, port in enumerate(ports[service], start=1):
                name = _replica_name(service, replica)
                metrics_port = free_port()  # GET /metrics on each process
                service_env = {
                    **base_env,
                    **addresses,
                    "DATABASE_URL": service_dsn(database_url, service, passwords[service]),
                    "GRPC_PORT": str(port),
                    "METRICS_PORT": str(metrics_port),
                }
                if service == "accounts":
                    service_env.update(PLATFORM_ADMIN_EMAIL=admin_email, PLATFORM_ADMIN_PASSWORD=admin_password)
                supervisor.start(
                    name,
                    ["-m", f"services.{service}"],
                    service_env,
                    f"127.0.0.1:{port}",
                    probe=f"grpc://127.0.0.1:{port}",
                )
                urls["metrics"][name] = f"http://127.0.0.1:{metrics_port}/metrics"
            urls["services"][service] = f"grpc://{addresses[f'{service.upper()}_ADDR']}"
        for service in SERVICES:
            for port in ports[service]:
                target = f"127.0.0.1:{port}"
                _wait(f"the {service} service", lambda t=target: grpc_serving(t), 60, supervisor)  # type: ignore[misc]

        gateway_ports = [gateway_port, *(free_port() for _ in range(replicas - 1))]
        gateway_urls = [f"http://127.0.0.1:{port}" for port in gateway_ports]
        for replica, (port, url) in enumerate(zip(gateway_ports, gateway_urls, strict=True), start=1):
            name = _replica_name("gateway", replica)
            metrics_port = free_port()
            gateway_env = {**base_env, **addresses, "GATEWAY_PORT": str(port), "METRICS_PORT": str(metrics_port)}
            supervisor.start(name, ["-m", "gateway"], gateway_env, url, probe=f"{url}/healthz")
            urls["metrics"][name] = f"http://127.0.0.1:{metrics_port}/metrics"
        for url in gateway_urls:
            _wait("the gateway", lambda u=url: http_ok(f"{u}/readyz"), 60, supervisor)  # type: ignore[misc]
        gateway_url = gateway_urls[0]
        urls["gateway"] = gateway_url
        urls["gateways"] = gateway_urls
        urls["replicas"] = replicas
        urls["database"] = "embedded" if postgres else "DATABASE_URL"
        (run_dir / "stack.json").write_bytes(orjson.dumps(urls, option=orjson.OPT_INDENT_2))
        healer = Healer(supervisor, run_dir / "status.json")
        healer.write_status()
        _banner(gateway_url, admin_email, admin_password, time.monotonic() - started, env, urls["metrics"])
        if replicas > 1:
            print(f"  replicas    {replicas} of each service; gateways {' '.join(gateway_urls)}", flush=True)

        while not stopping and os.getppid() == parent:
            dead = healer.tick()
            if dead is not None:
                print(
                    f"\n{dead.name} exited unexpectedly with code {dead.process.returncode}; stopping the stack.\n"
                    f"last lines of {dead.log_path}:\n{tail(dead.log_path)}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
        print("\nstopping ...", flush=True)
        return 0
    except (StartupError, EmbeddedPostgresError) as error:
        print(f"start-up failed: {error}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop_all()
        print("stopped every process of the stack", flush=True)


def _replica_name(name: str, replica: int) -> str:
    """`payments`, then `payments-2`, ...: one replica keeps the plain names (logs, status)."""
    return name if replica == 1 else f"{name}-{replica}"


def _banner(
    gateway_url: str, email: str, password: str, seconds: float, env: Env, metrics: dict[str, str] | None = None
) -> None:
    defaulted = env.optional("PLATFORM_ADMIN_PASSWORD") is None
    scrape = "".join(f"\n                {name:9} {url}" for name, url in (metrics or {}).items())
    print(
        f"""
collect platform is up in {seconds:.1f} s
  gateway     {gateway_url}   (OpenAPI: {gateway_url}/openapi.json, readiness: {gateway_url}/readyz)
  admin       {email} / {password if defaulted else "(PLATFORM_ADMIN_PASSWORD)"}
  log in      curl -s -X POST {gateway_url}/v1/auth/token -H 'content-type: application/json' \\
                   -d '{{"email": "{email}", "password": "..."}}'
  urls        .run/stack.json     logs: .run/logs/     restarts: .run/status.json     Slack: make slack
  metrics     scrape with Prometheus (GET /metrics):{scrape}
Ctrl-C stops everything.""",
        flush=True,
    )
