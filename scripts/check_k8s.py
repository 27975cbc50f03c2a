"""`make lint`: renders deploy/k8s's overlays with kustomize and validates every object against
Kubernetes' schemas (kubernetes-validate, strict: unknown fields are errors).

Rendering uses `kubectl kustomize` (or a `kustomize` binary). Custom resources that Kubernetes'
schemas do not describe (CloudNativePG's Cluster) get a structural check here instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32.0"
# apiVersion → kind → the fields its spec must have.
CUSTOM_RESOURCES = {"postgresql.cnpg.io/v1": {"Cluster": ("instances", "storage")}}


def _kustomize() -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    raise SystemExit(
        "rendering deploy/k8s needs kubectl (kubectl kustomize) or kustomize on PATH: "
        "install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize"
    )


def render(overlay: str) -> list[dict[str, Any]]:
    """The objects of one overlay, as kustomize renders them."""
    result = subprocess.run(
        [*_kustomize(), str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"kustomize failed on overlays/{overlay}:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def problems(objects: list[dict[str, Any]]) -> list[str]:
    """One line per object that does not validate."""
    import kubernetes_validate

    found = []
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        custom = CUSTOM_RESOURCES.get(obj.get("apiVersion", ""), {})
        if obj.get("kind") in custom:
            missing = [f for f in custom[obj["kind"]] if f not in obj.get("spec", {})]
            if missing:
                found.append(f"{name}: spec lacks {', '.join(missing)}")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            found.append(f"{name}: {error.message} at {'.'.join(str(p) for p in error.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            found.append(f"{name}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
    return found


def main() -> int:
    failed = False
    for overlay in OVERLAYS:
        objects = render(overlay)
        errors = problems(objects)
        for error in errors:
            print(f"overlays/{overlay}: {error}", file=sys.stderr)
        failed = failed or bool(errors)
        if not errors:
            print(f"deploy/k8s/overlays/{overlay}: {len(objects)} objects valid (Kubernetes {KUBERNETES_VERSION})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
