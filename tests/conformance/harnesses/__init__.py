"""One conformance harness per target kind: ``harnesses/<kind>.py``.

Each module defines a pytest fixture named ``harness_<kind>`` yielding a
:class:`tests.conformance.harnesses.base.Harness`. ``tests/conformance/conftest.py``
finds them by the catalog's kinds, so a kind without a harness fails the suite.
"""
