"""Schemathesis against the generated OpenAPI document, on a live server (tests/live_api.py):
a bounded run over every operation, checking that nothing is a server error, every status is
documented, and every response fits its schema. Runs in `.ci/run` with the rest of pytest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.live_api import LiveServer, live_api

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_api(Path(tmp_path_factory.mktemp("schemathesis"))) as live:
        yield live


def test_api_conforms_to_its_openapi_document(server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 13
    failures: list[str] = []
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=server.url, headers=server.auth("admin"), checks=CHECKS
            )
            statuses.append(response.status_code)

        try:
            run()
        except Exception as failure:  # every operation's first failure, reported together
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
    # The run reached the handlers, not only the authentication in front of them.
    assert len(statuses) >= 3 * len(operations)
    assert sum(200 <= s < 300 for s in statuses) >= len(operations), sorted(set(statuses))
