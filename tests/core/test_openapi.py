"""The OpenAPI document tells the truth: checked statically, then by a property-based run of
schemathesis against the live server."""

from __future__ import annotations

import json

import httpx
import pytest
import jsonschema_rs
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from simplane.core.errors import ERROR_CODES

PROBLEM_STATUSES = {"400", "401", "403", "404", "429", "500"}
TOKEN_PATH = "/v1/oauth2/token"


@pytest.fixture(scope="module")
def document(server) -> dict:  # type: ignore[no-untyped-def]
    response = httpx.get(f"{server.base_url}/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict):  # type: ignore[no-untyped-def]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_there_is_no_422_anywhere(document):
    text = json.dumps(document)
    assert '"422"' not in text
    assert "HTTPValidationError" not in text
    for _, _, operation in operations(document):
        assert "422" not in operation["responses"]


def test_every_operation_documents_its_problem_responses(document):
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    for path, method, operation in operations(document):
        responses = operation["responses"]
        expected = {"429", "500"} if path == TOKEN_PATH else PROBLEM_STATUSES
        assert expected <= set(responses), (method, path, sorted(responses))
        for status in expected:
            content = responses[status]["content"]
            assert list(content) == ["application/problem+json"], (method, path, status)
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"}
            # Each status names the stable codes it can carry.
            assert "`" in responses[status]["description"], (method, path, status)


def test_token_endpoint_documents_rfc6749_errors_and_no_bearer(document):
    operation = document["paths"][TOKEN_PATH]["post"]
    assert operation["security"] == []
    for status in ("400", "401"):
        assert list(operation["responses"][status]["content"]) == ["application/json"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["grant_type"]["enum"] == ["client_credentials"]


def test_bearer_auth_and_idempotency_key_are_documented(document):
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearer": []}]
    posts = [(p, o) for p, m, o in operations(document) if m == "post" and p != TOKEN_PATH]
    assert posts
    for path, operation in posts:
        keys = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
        assert len(keys) == 1, path
        assert keys[0]["in"] == "header"
        assert (keys[0]["schema"]["minLength"], keys[0]["schema"]["maxLength"]) == (1, 255)
        assert "idempotency_key_reused" in operation["responses"]["412"]["description"], path


def test_every_documented_code_exists(document):
    text = json.dumps(document)
    documented = {code for code in ERROR_CODES if f"`{code}`" in text}
    # Every code a route documents is one the server can answer; the common ones appear.
    assert {"validation_error", "unauthorized", "forbidden", "not_found", "rate_limited",
            "internal_error", "etag_mismatch", "idempotency_key_reused"} <= documented


def test_docs_page_is_served(server):
    response = httpx.get(f"{server.base_url}/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text


# --- property-based: schemathesis against the live server -----------------------------------

@pytest.fixture(scope="module")
def fuzz_tenant(shared_tenant):  # type: ignore[no-untyped-def]
    # Some real Things and a spare group, so lookups and filters can also hit something.
    shared_tenant.ship(3)
    created = shared_tenant.admin.post("/v1/things-groups", json={"name": "fuzz"})
    assert created.status_code == 201
    return shared_tenant


def _wire_values(value) -> list[str]:  # type: ignore[no-untyped-def]
    items = value if isinstance(value, list) else [value]
    return ["true" if v is True else "false" if v is False else "" if v is None else str(v)
            for v in items]


def _query_is_valid_on_the_wire(case) -> bool:  # type: ignore[no-untyped-def]
    """A negated query value can serialise to a valid one (`[false]` and `"false"` are both
    `?x=false`): the server never sees anything wrong, so accepting it is right."""
    if not case.query or case.method.upper() not in ("GET", "HEAD", "DELETE"):
        return False
    schemas = {p.name: p.definition.get("schema", {}) for p in case.operation.query}
    for name, value in case.query.items():
        schema = schemas.get(name)
        if schema is None:
            return False
        variants = schema.get("anyOf", [schema])
        item_schemas = [v.get("items", {}) if v.get("type") == "array" else v for v in variants
                        if v.get("type") != "null"]
        for wire in _wire_values(value):
            if not any(jsonschema_rs.is_valid(s, wire) for s in item_schemas):
                return False
    return True


def _rejects_negative_data(ctx, response, case):  # type: ignore[no-untyped-def]
    # Generated Idempotency-Keys repeat ("0", "a", ...) across different bodies; the server
    # rightly answers 412 idempotency_key_reused before it looks at the body.
    if response.status_code == 412 and b"idempotency_key_reused" in response.content:
        return None
    if response.status_code < 300 and _query_is_valid_on_the_wire(case):
        return None
    return negative_data_rejection(ctx, response, case)


def _fuzz(operation, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    if mode is GenerationMode.NEGATIVE:
        checks.append(_rejects_negative_data)

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case) -> None:  # type: ignore[no-untyped-def]
        case.call_and_validate(base_url=base_url, checks=checks)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_api_conforms_to_its_schema(server, fuzz_tenant, mode):
    api = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"Authorization": fuzz_tenant.admin.headers["Authorization"]}
    failures, fuzzed = [], []
    for result in api.get_all_operations():
        operation = result.ok()
        try:
            _fuzz(operation, mode, server.base_url, headers)
        except Unsatisfiable:
            # Nothing to negate: e.g. GET /v1/me, or a path id that is any string.
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.label}: {exc}")
        fuzzed.append(operation.label)
    assert not failures, "\n\n".join(failures)
    assert len(fuzzed) >= 15, fuzzed
