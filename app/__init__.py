"""ModelShip core: no Qt here (see tests/unit/test_architecture.py)."""

__version__ = "0.1.0"
