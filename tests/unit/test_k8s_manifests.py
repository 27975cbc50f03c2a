"""deploy/k8s as rendered by kustomize: each process gets every setting its code requires (the real
settings readers run on the manifest's environment), probes, resources, an HPA and a PDB, and
NetworkPolicies that admit exactly the callers of the README's architecture diagram."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import GatewaySettings
from runtime.config import SERVICES, ServiceSettings
from runtime.settings import Env
from scripts.check_k8s import OVERLAYS, render
from services.accounts.crypto import secrets_from_env
from services.banking.settings import BankingSettings
from services.payments.main import read_settings

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = (*SERVICES, "gateway")

pytestmark = pytest.mark.skipif(
    not (shutil.which("kubectl") or shutil.which("kustomize")), reason="needs kubectl or kustomize"
)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _base_name(name: str) -> str:
    """A generated object's name without kustomize's content hash."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def _dev_secrets(rendered: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], str]:
    """(secret, key) → value, from the secrets the dev overlay generates (what prod must provide too)."""
    return {
        (_base_name(name), key): base64.b64decode(value).decode()
        for name, secret in _by_kind(rendered["dev"], "Secret").items()
        for key, value in secret.get("data", {}).items()
    }


def environment(
    objects: list[dict[str, Any]], process: str, secrets: dict[tuple[str, str], str], container: str = ""
) -> dict[str, str]:
    """The environment Kubernetes gives a process's container (config maps, secrets, $(VAR) expanded)."""
    deployment = _by_kind(objects, "Deployment")[process]
    pod = deployment["spec"]["template"]["spec"]
    spec = next(c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] == (container or process))
    config_maps = {_base_name(n): c.get("data", {}) for n, c in _by_kind(objects, "ConfigMap").items()}
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = config_maps[_base_name(ref["name"])][ref["key"]]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            key = (_base_name(ref["name"]), ref["key"])
            assert key in secrets or ref.get("optional"), f"{process}: secret {key} is neither generated nor optional"
            if key in secrets:
                env[item["name"]] = secrets[key]
    return env


# Every settings reader of each process, as its start-up runs them.
READERS: dict[str, Callable[[Env], object]] = {
    "accounts": lambda env: (ServiceSettings.from_env("accounts", env), secrets_from_env(env)),
    "payments": lambda env: (ServiceSettings.from_env("payments", env), read_settings(env)),
    "terminal": lambda env: ServiceSettings.from_env("terminal", env),
    "banking": lambda env: (ServiceSettings.from_env("banking", env), BankingSettings.from_env(env)),
    "gateway": GatewaySettings.from_env,
}


def design_calls() -> dict[str, set[str]]:
    """callee → callers, from the README's mermaid diagram (`pay -->|gRPC| acc`)."""
    text = (ROOT / "README.md").read_text()
    names = {node: name.split("<")[0] for node, name in re.findall(r"(\w+)\[([\w<>/ ]+)\]", text)}
    calls: dict[str, set[str]] = {}
    for caller, callee in re.findall(r"^\s*(\w+) -->\|gRPC\| (\w+)", text, re.MULTILINE):
        calls.setdefault(names[callee], set()).add(names[caller])
    return calls


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_required_setting_is_provided(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    secrets = _dev_secrets(rendered)
    callers = design_calls()
    for process in PROCESSES:
        env = environment(rendered[overlay], process, secrets)
        READERS[process](Env(env))  # raises SettingsError on a missing or malformed setting
        if process != "gateway":
            settings = ServiceSettings.from_env(process, Env(env))
            assert settings.grpc_host == "0.0.0.0" and settings.metrics_port > 0
            for callee, who in callers.items():
                if process in who:
                    assert settings.target(callee)  # it has the address of each service it calls
            assert settings.database_url.startswith(f"postgresql://collect_{process}:")  # its own role
            migrate = environment(rendered[overlay], process, secrets, container="migrate")
            assert migrate["DATABASE_URL"] == settings.database_url
    accounts = environment(rendered[overlay], "accounts", secrets)
    assert {"ACCOUNTS_ENCRYPTION_KEYS", "ACCOUNTS_BLIND_INDEX_KEY"} <= set(accounts)  # never the development keys
    banking = environment(rendered[overlay], "banking", secrets)
    assert banking["QONTO_LOGIN"] and banking["QONTO_SECRET_KEY"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_has_probes_resources_autoscaling_and_a_disruption_budget(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    deployments, hpas, pdbs = (
        _by_kind(objects, k) for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    )
    for process in PROCESSES:
        pod = deployments[process]["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == process)
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        if process == "gateway":
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        else:
            assert container["readinessProbe"]["grpc"] == {"port": 50051}  # "" follows the database
            assert container["livenessProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
            assert pod["initContainers"][0]["command"] == ["python", "-m", "runtime.migrate", process]
        assert hpas[process]["spec"]["scaleTargetRef"]["name"] == process
        assert pdbs[process]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": process}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_only_the_designed_callers(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    policies = _by_kind(rendered[overlay], "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    for callee, callers in design_calls().items():
        rules = policies[f"{callee}-ingress"]["spec"]["ingress"]
        grpc = [r for r in rules if r["ports"] == [{"port": 50051, "protocol": "TCP"}]]
        admitted = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for r in grpc for peer in r["from"]}
        assert admitted == callers, callee
    assert design_calls()["accounts"] == {"gateway", "payments", "terminal", "banking"}
