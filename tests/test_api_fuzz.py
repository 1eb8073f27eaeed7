"""The API fuzzed from its own OpenAPI document with schemathesis, in process (ASGI): every
operation, valid and invalid parameters and bodies, writes with a live token. No answer may be
a 500, and every answer must match what the document says (errors: the one `Problem` shape).
Well-formed input the ledger's rules refuse (an unknown buyer, a date before the policy) is a
422, so schemathesis's check that schema-valid requests succeed is left out.

`make test` runs 25 examples per operation; `make soak` (CREDITLEDGER_SOAK=1) runs 1,000.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from helpers import POLICY_FILE, cli
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_json_schemas import EARLY, EVENTS, toml_events

from ledger.service import Ledger
from ledger.web.app import create_app

pytestmark = pytest.mark.soak
EXAMPLES = 1000 if os.environ.get("CREDITLEDGER_SOAK") == "1" else 25


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    folder = tmp_path_factory.mktemp("fuzz")
    path, book = str(folder / "ledger.db"), folder / "book.toml"
    book.write_text(POLICY_FILE.read_text() + toml_events([{"recorded": EARLY, **e} for e in EVENTS]))
    cli("init", "--db", path)
    cli("import", str(book), "--keep-recorded", "--db", path)
    with Ledger(path) as ledger:
        token = ledger.tokens.create("fuzz", ledger.clock())
    yield create_app(path, catch_up_every=None), token


def operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    # The event stream never ends: tests/test_serve.py reads it over a real connection.
    return [operation for operation in found if not operation.path.endswith("/stream")]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_document(served: tuple[Any, str], mode: GenerationMode) -> None:
    app, token = served
    checked, cases = [], []
    for operation in operations(app):
        headers = {"Authorization": f"Bearer {token}"} if operation.method.upper() == "POST" else None

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def keeps(case: Any) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])  # noqa: B023 (run at once)
            cases.append(case)

        try:
            keeps()
        except Unsatisfiable:
            # Nothing of it can be made invalid (no parameters, say /api/summary): no negative cases.
            assert mode is GenerationMode.NEGATIVE, operation.path
            continue
        checked.append(f"{operation.method.upper()} {operation.path}")
    print(f"schemathesis: {len(cases)} {mode.value} cases over {len(checked)} operations")
    assert len(checked) >= (12 if mode is GenerationMode.POSITIVE else 8), checked


def test_the_document_names_the_error_shape(served: tuple[Any, str], tmp_path: Path) -> None:
    from litestar.testing import TestClient

    with TestClient(app=served[0]) as client:
        document = client.get("/api/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/") and "docs" not in path and not path.endswith(".json"):
                assert "422" in operation["responses"], (method, path)
