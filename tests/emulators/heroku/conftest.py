from tests.emulators.heroku.fixtures import heroku_emulator

__all__ = ["heroku_emulator"]
