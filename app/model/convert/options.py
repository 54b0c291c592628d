"""How a profile's ``[model]`` section becomes the converter's options: in one place.

The pipeline and ``modelship build`` (a profile), ``modelship convert`` (its flags, read
into the same section) and the wizard (its answers, likewise) all call
:func:`options_for`, so a key the profile gains reaches every route the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.model.convert.report import ConvertOptions

if TYPE_CHECKING:  # the profile sits beside the converter, not below it
    from app.store.profile import ModelSection


def options_for(model: ModelSection, *, trust: bool, **extra: Any) -> ConvertOptions:
    """The options to convert ``model`` (a profile's model section) with.

    ``trust`` is this computer's say about the file (never the profile's); ``extra``
    sets the options a profile does not hold (``generated_rows``, ``timeout_s``, ...).
    """
    return ConvertOptions(
        python=model.python,
        sample_csv=model.sample_csv,
        input_shape=model.input_shape,
        tolerance=model.tolerance,
        allow_mismatch=model.accept_mismatch,
        quantize=model.quantize,
        trust=trust,
        match_env=model.match_env,
        **extra,
    )
