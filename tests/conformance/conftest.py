"""The conformance suite runs once per target kind in the catalog.

Each kind's harness lives in ``harnesses/<kind>.py`` as a fixture named
``harness_<kind>``; a kind without one fails here, so no target can be added without
passing the suite.
"""

from __future__ import annotations

import importlib

import pytest

from targets import CATALOG

for _kind in CATALOG:
    try:
        _module = importlib.import_module(f"tests.conformance.harnesses.{_kind}")
    except ModuleNotFoundError:
        continue
    globals()[f"harness_{_kind}"] = getattr(_module, f"harness_{_kind}")


@pytest.fixture(params=list(CATALOG), ids=list(CATALOG))
def harness(request: pytest.FixtureRequest):
    kind = request.param
    if f"harness_{kind}" not in globals():
        pytest.fail(f"target {kind!r} has no conformance harness (tests/conformance/harnesses)")
    return request.getfixturevalue(f"harness_{kind}")
