"""How the wizard names a model's class, and what it says about a class defined in a
notebook (its code is not in the pickle)."""

from __future__ import annotations

import re


def class_words(path: str | None) -> str | None:
    """``sklearn.ensemble._forest.RandomForestClassifier`` -> ``RandomForestClassifier``:
    the private module path means nothing to an analyst."""
    if not path:
        return path
    return path.rsplit(".", 1)[-1]


NOTEBOOK_CLASS = (
    "Your model's class {cls} was defined in a notebook or a script run directly, so "
    "its code is not saved in the file and no Python can load it again."
)
NOTEBOOK_FIX = (
    "Save the model with TorchScript, which keeps the code in the file: in your "
    'notebook run torch.jit.script(model).save("model.pt") (or torch.jit.trace(model, '
    'example).save("model.pt")) and choose that file. Or move the class into a module '
    "installed in your training environment (e.g. pip install -e your project), save the "
    "model again, and under “Convert with” pick the Python of that environment."
)


def notebook_class(text: str) -> str | None:
    """The class name when ``text`` says a pickle needs a class from ``__main__`` (a
    notebook or a script run directly): "__main__.Tiny" or the unpickler's
    "Can't get attribute 'Tiny' on <module '__main__'>"."""
    m = re.search(r"Can't get attribute '([\w.]+)' on <module '__main__'", text or "")
    if m:
        return m.group(1)
    m = re.match(r"__main__\.([\w.]+)$", text or "")
    return m.group(1) if m else None
