"""Fixtures of the SageMaker stand-ins, for the emulator's own tests."""

from tests.emulators.sagemaker_runtime.fixtures import (  # noqa: F401
    _moto_session,
    _sagemaker_emulator_session,
    moto_server,
    sagemaker_echo_image,
    sagemaker_emulator,
)
