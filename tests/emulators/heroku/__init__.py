"""A test emulator of Heroku's container path: Platform API, registry, dynos, router.

See ``emulator.HerokuEmulator`` (in process) and ``python -m tests.emulators.heroku``
(out of process, for the packaged executable's tests); ``fixtures.heroku_emulator`` is
the pytest fixture.
"""

from .emulator import ApiError, Fault, HerokuEmulator

__all__ = ["ApiError", "Fault", "HerokuEmulator"]
