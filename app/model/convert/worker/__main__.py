"""Runs the conversion worker: ``python app/model/convert/worker/__main__.py JOB_DIR``.

The worker runs under the user's interpreter (``--python``), where ``app`` is not
importable, and it takes its own folder, the working directory and '' off
``sys.path`` before anything else (Python before 3.11 ignores PYTHONSAFEPATH; see
isolation.py), so that nothing beside the model or in the job folder can shadow a
library. Its modules are then found through a private package name, ``_modelship``,
mapped onto this checkout's ``app/model/`` and ``app/model/convert/`` folders without running
their ``__init__`` files: ``_modelship.convert.worker.main`` here is
``app.model.convert.worker.main`` in the app, and ``_modelship.modelfacts`` is
``app.model.modelfacts``. No folder is added to ``sys.path``.
"""

import os
import sys

if __name__ == "__main__":
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [
        p for p in sys.path if p not in ("", ".") and os.path.abspath(p) not in (_HERE, os.getcwd())
    ]
    import types

    _CONVERT = os.path.dirname(_HERE)
    for _name, _folder in (
        ("_modelship", os.path.dirname(_CONVERT)),
        ("_modelship.convert", _CONVERT),
    ):
        _package = types.ModuleType(_name)
        _package.__path__ = [_folder]
        _package.__package__ = _name
        sys.modules[_name] = _package
    from _modelship.convert.worker.main import main

    sys.exit(main(sys.argv))
