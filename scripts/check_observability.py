"""`make lint`: the alert rules pass `promtool check rules` and their unit tests (`promtool test
rules`: deploy/prometheus/rules_test.yml), and every metric the rules and the
Grafana dashboards query is one the code exports (runtime/metrics.py EXPORTED, which a test
checks against a real scrape).

promtool comes from Debian's `prometheus` package: when it is missing and we are root, it is
installed with apt-get; otherwise the check stops with what to install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

# PromQL words that are not metric names: keywords, and label lists after these modifiers.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_VARIABLES = re.compile(r"\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions and keywords left out)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _LABEL_LISTS.sub("", text)
    text = _VARIABLES.sub("", text)
    return {
        name
        for name, call in _IDENTIFIER.findall(text)
        if not call and name not in _KEYWORDS and not re.fullmatch(r"\d\w*|inf|nan", name, re.IGNORECASE)
    }


def _rule_expressions() -> Iterator[tuple[str, str]]:
    # The rules file is YAML; its expressions are the `expr:` values (plain or folded with `>`).
    lines = RULES.read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith("expr:"):
            continue
        value = stripped[len("expr:") :].strip()
        if value in (">", "|", ">-", "|-"):
            indent = len(line) - len(line.lstrip()) + 2
            body = []
            for follow in lines[i + 1 :]:
                if follow.strip() and len(follow) - len(follow.lstrip()) < indent:
                    break
                body.append(follow.strip())
            value = " ".join(body)
        yield f"{RULES.relative_to(ROOT)}:{i + 1}", value


def _dashboard_expressions() -> Iterator[tuple[str, str]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        document = json.loads(path.read_text())

        def panels(items: list[dict[str, object]]) -> Iterator[dict[str, object]]:
            for panel in items:
                yield panel
                yield from panels(panel.get("panels", []))  # type: ignore[arg-type]

        for panel in panels(document.get("panels", [])):
            for target in panel.get("targets", []):  # type: ignore[attr-defined]
                if "expr" in target:
                    yield f"{path.relative_to(ROOT)}: {panel.get('title')}", str(target["expr"])


def _test_series() -> Iterator[tuple[str, str]]:
    """The input series of the rules' unit tests (they must be series the code exports too)."""
    for i, line in enumerate(RULES_TEST.read_text().splitlines()):
        stripped = line.strip()
        if stripped.startswith("- series:"):
            yield f"{RULES_TEST.relative_to(ROOT)}:{i + 1}", stripped[len("- series:") :].strip().strip("'\"")


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and dashboard query, and of the rules' test series."""
    return [*_rule_expressions(), *_dashboard_expressions(), *_test_series()]


def unknown_names() -> list[str]:
    """One line per query naming a metric the code does not export."""
    from runtime.metrics import EXPORTED

    problems = []
    for where, expr in expressions():
        unknown = sorted(metric_names(expr) - EXPORTED)
        if unknown:
            problems.append(f"{where}: {', '.join(unknown)} not exported (runtime/metrics.py)")
    return problems


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("promtool not found: installing Debian's prometheus package (apt-get)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "prometheus"], check=True, env=env)
        found = shutil.which("promtool")
        if found:
            return found
    raise SystemExit(
        "promtool is required to check the alert rules: install Debian's `prometheus` package "
        "(sudo apt-get install prometheus) or put promtool on PATH"
    )


def main() -> int:
    tool = promtool()
    for command in (
        ["check", "rules", str(RULES)],
        ["test", "rules", str(RULES_TEST)],
        ["check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
    ):
        result = subprocess.run([tool, *command], capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            return 1
    problems = unknown_names()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"alert rules and dashboards: {len(expressions())} queries, every metric exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
