"""SageMaker stand-in for tests: runtime InvokeEndpoint and a control-plane front over moto.

See :mod:`.emulator` for what it does and :mod:`.fixtures` for the pytest fixtures.
"""

from .emulator import Emulator, EndpointState, Fault
from .server import EmulatorServer, MotoServer, free_port

__all__ = ["Emulator", "EmulatorServer", "EndpointState", "Fault", "MotoServer", "free_port"]
