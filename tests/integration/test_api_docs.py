"""/docs shows /openapi.json in Swagger UI from files the gateway serves itself (no CDN)."""

from __future__ import annotations

import re

from tests.fixtures.stack import Stack


async def test_the_viewer_and_its_assets_come_from_the_gateway(stack: Stack) -> None:
    page = await stack.http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/docs/") for asset in assets), assets
    for asset in assets:
        answer = await stack.http.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 100, asset
    assert "/openapi.json" in (await stack.http.get("/docs/init.js")).text
    assert (await stack.http.get("/docs/nothing.js")).status_code == 404


async def test_every_operation_is_named_tagged_and_typed(stack: Stack) -> None:
    document = (await stack.http.get("/openapi.json")).json()
    generated = [
        (path, verb, operation)
        for path, operations in document["paths"].items()
        for verb, operation in operations.items()
        if operation.get("description", "").startswith("Served by")
    ]
    assert len(generated) >= 39
    ids = [operation["operationId"] for _, _, operation in generated]
    assert len(ids) == len(set(ids))
    for path, verb, operation in generated:
        assert operation["tags"] and operation["summary"], (path, verb)
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), (path, verb)
        for status, answer in operation["responses"].items():
            if status.startswith("2") and status != "204":
                assert "$ref" in answer["content"]["application/json"]["schema"], (path, verb)
            elif not status.startswith("2"):
                assert "application/problem+json" in answer["content"], (path, verb, status)
    payment = document["components"]["schemas"]["Payment"]
    assert payment["properties"]["amount"] == {"type": "integer", "format": "int64"}
    assert "succeeded" in payment["properties"]["status"]["enum"]
