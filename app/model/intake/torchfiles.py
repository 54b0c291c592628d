"""PyTorch files: TorchScript and torch.save zip archives, torch.export archives (.pt2)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from app.errors import ModelError, UnsupportedModelError
from app.model.files import MappedReader
from app.model.intake.artifact import _NOT_MODEL_HINT, ModelArtifact
from app.model.intake.skopsfile import _inspect_skops
from app.model.intake.unpickler import scan_pickle
from app.model.picklescan import SAFE, judge, scan_stream
from app.nextstep import chosen_python, input_shape, say


def _inspect_zip(p: Path, data: bytes) -> ModelArtifact:
    try:
        # a mapped file is read in place: only the directory and the members used
        zf = zipfile.ZipFile(MappedReader(data))
        names = zf.namelist()
    except zipfile.BadZipFile:
        raise ModelError(
            f"{p.name} is a zip file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    if "schema.json" in names:
        return _inspect_skops(p, zf)
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names) and not any(
        n.endswith("/data.pkl") for n in names
    ):
        return _inspect_torch_export(p, zf, names)
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkl:
        raise ModelError(
            f"{p.name} is a zip archive, but not a saved model (no PyTorch data.pkl inside).",
            _NOT_MODEL_HINT,
        )
    is_script = any("/code/" in n or n.startswith("code/") for n in names)
    try:
        raw = zf.read(pkl[0])
        version = ""
        vfile = [n for n in names if n.endswith("/.data/version") or n.endswith("/version")]
        if vfile:
            version = zf.read(vfile[0]).decode("ascii", "replace").strip()
    except Exception:
        raise ModelError(
            f"{p.name} is a PyTorch file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    imports, complete = scan_pickle(raw)
    if not complete:
        raise ModelError(
            f"{p.name} is a PyTorch file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        )
    # every pickle in the archive counts, not only data.pkl (constants.pkl, extra files)
    all_imports = list(imports)
    for other in names:
        if other.endswith(".pkl") and other != pkl[0]:
            try:
                more = scan_stream(zf.read(other)).imports
            except Exception:
                more = ["?.unreadable_pickle_in_archive"]
            all_imports.extend(i for i in more if i not in all_imports)
    if is_script:
        # TorchScript's own (C++) unpickler resolves only TorchScript classes (__torch__.*),
        # its list builders (torch.jit._pickle.*) and tensor rebuilders, never Python
        # imports: those names are data here.
        verdict = judge(
            [i for i in all_imports if not i.startswith(("__torch__.", "torch.jit._pickle."))]
        )
    else:
        verdict = judge(all_imports)
    art = ModelArtifact(
        path=p,
        kind="pytorch",
        format="torchscript" if is_script else "torch-module",
        pickle_imports=imports,
        runs_code_on_load=not is_script,
        libraries={"torch": ""},
        safety=verdict,
    )
    if verdict.verdict != SAFE:
        art.warnings.append(verdict.summary())
    if is_script:
        art.estimator = imports[0] if imports else "TorchScript module"
        art.warnings.append(
            "A TorchScript file runs no Python code on load, but its graph runs when converting."
        )
    else:
        # the first reference is the class of the object saved at the top
        first = imports[0] if imports else None
        if first is None or first.startswith(("collections.", "builtins.", "torch._utils")):
            raise UnsupportedModelError(
                f"{p.name} is a PyTorch file holding only weights (a state_dict), not a model.",
                "Save the whole module with torch.save(model, path) or script it with "
                "torch.jit.script(model).save(path).",
            )
        art.estimator = first
        art.warnings.append(
            "Loading this file runs code (torch.save uses pickle): convert it only if you "
            "trust where it came from."
        )
        if not first.startswith("torch."):
            art.warnings.append(
                say(
                    f"Its class {first} must be importable when converting: install its module in ",
                    chosen_python(),
                    " (the environment it was trained in); code beside the model file is "
                    "never imported.",
                )
            )
    if version:
        art.warnings.append(f"PyTorch archive format version {version}.")
    art.warnings.append(
        say(
            "PyTorch models need an input shape to convert, ", input_shape("e.g.", "1,3,32,32"), "."
        )
    )
    return art


def _inspect_torch_export(p: Path, zf: zipfile.ZipFile, names: list[str]) -> ModelArtifact:
    """A torch.export archive: a graph and raw weights, no pickled Python objects."""
    art = ModelArtifact(
        path=p,
        kind="pytorch",
        format="torch-export",
        estimator="torch.export.ExportedProgram",
        libraries={"torch": ""},
    )
    art.warnings.append(
        "A torch.export archive runs no Python code on load, but its graph runs when converting."
    )
    return art
