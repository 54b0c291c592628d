"""Conversion environments that match the library versions a model was saved with.

Over 600 lines: one concern (making and finding matching environments), in the
sections where / which Python / making one.

A pickle loads reliably only with the library versions it was saved with. When a
model file records versions that differ from ModelShip's own, ModelShip can make a
Python environment with exactly those versions plus the converters (``--match-env``;
in the wizard, one button) and run the conversion worker there. Environments are
cached by what decides their content (the pinned libraries, the Python version and
the converters asked for), so every later conversion that needs the same set reuses
one, and several ModelShip processes never build the same one twice at once.

pip downloads from the package index the user has configured: it honours
``PIP_INDEX_URL`` (a mirror) and ``HTTPS_PROXY`` itself, and they are passed through.
``MODELSHIP_ENV_CACHE`` puts the cache elsewhere (CI keeps it between runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import Cancelled, EnvironmentMismatchError
from app.image.wheelhouse import NETWORK_SIGNS, stream_pip
from app.progress import CancelToken, NullProgress, Progress
from app.runtime import is_frozen

# Bump when what goes into an environment changes: old ones are then never reused.
FORMAT = 1
# What the conversion worker imports besides the model's own library; pip picks the
# newest versions that fit the pinned model libraries. (onnxmltools 1.16 imports
# packaging without declaring it.)
CONVERTERS = (
    "skl2onnx",
    "onnxmltools",
    "onnx",
    "numpy",
    "scipy",
    "pandas",
    "joblib",
    "packaging",
)
# Libraries whose pickles are tied to the version that wrote them.
MATCHED = ("scikit-learn", "xgboost", "lightgbm")
# Formats that rebuild the library's objects from their pickled state, so they are tied
# to the version that wrote them as a pickle is: skops files hold each estimator's
# __getstate__ (with its _sklearn_version) and skops sets it back the same way.
PICKLED = ("pickle", "joblib", "skops")
# Native formats a later release reads, but an earlier one may not: only a file from a
# newer release than ModelShip's needs a matching environment.
NATIVE = ("xgboost-json", "xgboost-ubj", "xgboost-bin", "lightgbm-txt")
# Libraries an environment needs to load the model, unpinned unless recorded: skops to
# read a .skops file, CatBoost for a CatBoost model (inside a pickle or a pipeline).
_LOADERS = {"skops": "skops", "catboost": "catboost"}
# Download sizes (MB, Linux x86-64 wheels) for the wizard's "about N MB": a guide only.
_SIZE_MB = {
    "scikit-learn": 13,
    "xgboost": 5,
    "lightgbm": 4,
    "torch": 200,
    "skl2onnx": 1,
    "onnxmltools": 1,
    "onnx": 17,
    "numpy": 17,
    "scipy": 36,
    "pandas": 13,
    "joblib": 1,
    "packaging": 1,
    "skops": 1,
    "catboost": 100,
}
# The newest release of each library that ModelShip's converters are known to handle
# (the releases its tests run with). A matching environment gets it for a library the
# model needs when the file records no release (a CatBoost .cbm, a LightGBM pickle, a
# PyTorch file) and ModelShip's own Python lacks it: nothing to match, so the newest
# that converts. Raise these when the converters are tested with newer releases.
NEWEST_SUPPORTED = {
    "catboost": "1.2.10",
    "lightgbm": "4.7.0",
    "xgboost": "3.2.0",
    "torch": "2.13.0",
    "scikit-learn": "1.9.1",
    "skops": "0.16.0",
}
# What loads and converts a model of each kind, beyond CONVERTERS.
_KIND_NEEDS = {
    "catboost": ("catboost",),
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost",),
    "pytorch": ("torch", "onnxscript"),
    "sklearn": ("scikit-learn",),
}
_COMPLETE = "modelship-env.json"
DEFAULT_INDEX = "https://pypi.org/simple"


class MatchingEnvironmentError(EnvironmentMismatchError):
    """A matching conversion environment could not be made."""


class NeedsMatchingEnvironment(EnvironmentMismatchError):
    """The file records library versions that differ from ModelShip's own; converting
    it needs a matching environment (``match_env``) or the user's own (``--python``)."""

    def __init__(self, message: str, hint: str | None = None, *, mismatch: Mismatch) -> None:
        super().__init__(message, hint)
        self.mismatch = mismatch


@dataclass(frozen=True)
class EnvSpec:
    """What a matching environment holds: the model's libraries, pinned exactly."""

    libraries: tuple[tuple[str, str], ...]
    python_version: str  # "3.11": the environment's Python (major.minor)
    converters: tuple[str, ...] = CONVERTERS

    @classmethod
    def of(cls, libraries: dict[str, str], python_version: str) -> EnvSpec:
        return cls(tuple(sorted(libraries.items())), python_version)

    def requirements(self) -> list[str]:
        pins = [f"{_dist(d, v)}=={v}" if v else _dist(d, v) for d, v in self.libraries]
        return pins + [c for c in self.converters if c not in dict(self.libraries)]

    def key(self) -> str:
        doc = {
            "format": FORMAT,
            "libraries": dict(self.libraries),
            "python": self.python_version,
            "converters": list(self.converters),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def words(self) -> str:
        """'scikit-learn 1.9.1' / 'scikit-learn 1.7.2 and xgboost 2.1.4'."""
        parts = [f"{d} {v}" if v else d for d, v in self.libraries]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def download_mb(self) -> int:
        return sum(_SIZE_MB.get(d, 5) for d in {d for d, _ in self.libraries} | set(CONVERTERS))


@dataclass
class Mismatch:
    """The versions a model file records that ModelShip's own environment lacks."""

    wanted: dict[str, str]  # every recorded version of the model's libraries
    differing: dict[str, str] = field(default_factory=dict)  # {dist: version here or ""}
    # libraries the model needs that the file records no release of and ModelShip's
    # Python lacks: the environment gets NEWEST_SUPPORTED's release of each
    picked: dict[str, str] = field(default_factory=dict)

    def words(self, name: str) -> str:
        """What is wrong, in one sentence, for ``name`` (the model file)."""
        recorded = {d: v for d, v in self.differing.items() if d not in self.picked}
        parts = []
        if recorded:
            saved = ", ".join(f"{d} {self.wanted[d]}" for d in sorted(recorded))
            here = ", ".join(f"{d} {v or 'not installed'}" for d, v in sorted(recorded.items()))
            parts.append(f"{name} was saved with {saved}, but ModelShip has {here}.")
        if self.picked:
            libs = " and ".join(sorted(self.picked))
            parts.append(
                f"{name} needs {libs} to be converted, which ModelShip's own Python does not have."
            )
        return " ".join(parts)


def _dist(dist: str, version: str = "") -> str:
    """The distribution to install: the CPU-only xgboost on Linux/Windows (the default
    wheel carries CUDA and NCCL, ~700 MB, that a converter never uses), which exists
    from XGBoost 2.1 on."""
    if dist == "xgboost" and sys.platform != "darwin" and _at_least(version or "9", (2, 1)):
        return "xgboost-cpu"
    return dist


def _at_least(version: str, floor: tuple[int, int]) -> bool:
    nums = [int(n) for n in re.findall(r"\d+", version)[:2]]
    return tuple(nums) >= floor


def installed_version(dist: str) -> str:
    from importlib import metadata

    for name in (dist, _dist(dist)):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


def mismatch(kind: str, fmt: str, libraries: dict[str, str]) -> Mismatch | None:
    """What differs in a way that matters, or None.

    Pickles (pickle, joblib) and skops files are tied to the versions that wrote them:
    one matters when a library it records a version of is missing here or has another
    version (scikit-learn refuses to vouch for a pickle from any other release, patch
    releases included). XGBoost JSON/UBJ and LightGBM text files load in any later
    release, so they matter only when saved by a newer one than ModelShip's; ONNX needs
    no library at all. An MLflow folder's pinned requirements count as recorded
    versions (app.model.intake puts them in ``libraries``).
    """
    recorded = {d: v for d, v in libraries.items() if d in MATCHED and v}
    absent = _absent_here(kind, fmt, libraries, recorded)
    if fmt in PICKLED:
        differing = {
            d: installed_version(d) for d, v in recorded.items() if installed_version(d) != v
        }
    elif fmt in NATIVE:
        differing = {
            d: installed_version(d)
            for d, v in recorded.items()
            if not installed_version(d) or _newer(v, installed_version(d))
        }
    else:
        differing = {}
    if not differing and not absent:
        return None
    if not differing:  # nothing recorded differs: only what is missing here, newest
        wanted = {d: NEWEST_SUPPORTED.get(d, "") for d in absent}
        return Mismatch(wanted=wanted, differing=dict.fromkeys(absent, ""), picked=wanted)
    # libraries the file uses without saying which release (LightGBM pickles, older
    # XGBoost ones): the environment gets ModelShip's own release of them
    wanted = dict(recorded)
    for d in MATCHED:
        if d in libraries and d not in wanted:
            wanted[d] = installed_version(d)
    # what loads the file besides the model's libraries: the recorded release if the
    # file or MLflow folder says, else ModelShip's own, else the newest that fits
    loaders = {d for d in libraries if d in _LOADERS} | ({"skops"} if fmt == "skops" else set())
    if kind == "catboost":
        loaders.add("catboost")
    for d in sorted(loaders):
        version = libraries.get(d, "")
        wanted[_LOADERS[d]] = version if version[:1].isdigit() else installed_version(d)
    return Mismatch(wanted=wanted, differing=differing)


def _absent_here(
    kind: str, fmt: str, libraries: dict[str, str], recorded: dict[str, str]
) -> list[str]:
    """Libraries the model needs to load and convert that ModelShip's own Python lacks
    and the file records no release of (so nothing to match: the newest supported)."""
    if fmt == "onnx" or kind == "onnx":
        return []
    needs = list(_KIND_NEEDS.get(kind, ()))
    needs += [d for d in libraries if d in MATCHED or d in _LOADERS]
    if fmt == "skops":
        needs.append("skops")
    return [
        d
        for d in dict.fromkeys(needs)
        if d not in recorded and not installed_version(d) and d in NEWEST_SUPPORTED | _EXTRA
    ]


# Loaders that come unpinned (no release of theirs matters to the model's file).
_EXTRA = {"onnxscript": ""}


def _newer(version: str, than: str) -> bool:
    """Is ``version`` a later release than ``than`` (numbers compared, labels ignored)?"""

    def nums(v: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", v)[:3])

    return nums(version) > nums(than)


def recorded_versions(path: str | Path, fmt: str, libraries: dict[str, str]) -> dict[str, str]:
    """``libraries`` (what intake found) plus what only the bytes of a pickle tell: the
    XGBoost release a pickled booster was saved with (its serialisation carries
    ``"version": [major, minor, patch]``, as UBJSON or JSON)."""
    out = dict(libraries)
    if fmt not in PICKLED or "xgboost" not in out or out["xgboost"]:
        return out
    try:
        data = _uncompressed(Path(path).read_bytes())
    except OSError:
        return out
    ubj = re.search(rb"\x07version\[#(?:[iU]|L\x00{7})\x03[iU](.)[iU](.)[iU](.)", data, re.S)
    if ubj:
        out["xgboost"] = ".".join(str(b[0]) for b in ubj.groups())
        return out
    text = re.search(rb'"version"\s*:\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]', data)
    if text:
        out["xgboost"] = ".".join(g.decode() for g in text.groups())
    return out


def _uncompressed(data: bytes) -> bytes:
    """A compressed joblib file's pickle stream (zlib or gzip: joblib's usual two)."""
    import gzip
    import zlib

    try:
        if data[:2] in (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"):
            return zlib.decompressobj().decompress(data)
        if data[:2] == b"\x1f\x8b":
            return gzip.decompress(data)
    except (OSError, zlib.error, EOFError):
        return b""
    return data


def spec_for(found: Mismatch, python_version: str | None = None) -> EnvSpec:
    return EnvSpec.of(found.wanted, python_version or _python_version_of(base_python()))


# ---- where ------------------------------------------------------------------------------


def cache_root() -> Path:
    value = os.environ.get("MODELSHIP_ENV_CACHE")
    if value:
        root = Path(value).expanduser()
    else:
        from app.paths import cache_dir

        root = cache_dir() / "envs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _python_in(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_env(spec: EnvSpec) -> str | None:
    """The Python of a finished environment for ``spec``, or None."""
    env = cache_root() / spec.key()
    python = _python_in(env)
    if (env / _COMPLETE).is_file() and python.exists():
        return str(python)
    return None


# ---- which Python makes it --------------------------------------------------------------


def base_python() -> str:
    """The Python that makes environments: this one from source; in the packaged app
    (which has no interpreter of its own) a python3 of at least 3.10 on the PATH."""
    if not is_frozen():
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11", "python3.10", "python3", "python"):
        found = shutil.which(name)
        if found:
            with contextlib.suppress(MatchingEnvironmentError, ValueError):
                major, minor = _python_version_of(found).split(".")
                if (int(major), int(minor)) >= (3, 10):
                    return found
    raise MatchingEnvironmentError(
        "ModelShip needs Python 3.10 or newer on this computer to make a matching "
        "environment, and found none.",
        "Install Python 3 (e.g. apt install python3 python3-venv, or from python.org), "
        "then try again; or convert with a Python that has the model's libraries.",
    )


def _python_version_of(python: str) -> str:
    if python == sys.executable:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        raise MatchingEnvironmentError(
            f"Could not run {python} to find its version.",
            "Check that it is a working Python 3 interpreter.",
        ) from None
    return out


# ---- making one -------------------------------------------------------------------------


def ensure_env(
    spec: EnvSpec,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """The Python of a matching environment for ``spec``, made first if it is not cached.

    Made in a temporary folder beside the cache entry and renamed into place when pip
    has finished, so a failed, cancelled or killed build never leaves a half-made
    environment that a later conversion would take for a finished one. Only ``python
    -m ...`` is ever run from it, so the rename does not matter (console scripts'
    shebangs would name the temporary folder).
    """
    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    found = find_env(spec)
    if found:
        progress.update(None, f"Using the matching environment with {spec.words()}")
        return found
    root = cache_root()
    with _build_lock(root / f"{spec.key()}.lock", progress, cancel):
        found = find_env(spec)  # another process made it while this one waited
        if found:
            progress.update(None, f"Using the matching environment with {spec.words()}")
            return found
        final = root / spec.key()
        if final.exists():  # a finished folder without its marker: not ours to trust
            shutil.rmtree(final, ignore_errors=True)
        # left by a build that was killed (builds run only under this lock)
        for stale in root.glob(f".building-{spec.key()}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".building-{spec.key()}-{os.getpid()}"
        progress.step(
            f"Making a conversion environment with {spec.words()} "
            f"(downloads about {spec.download_mb()} MB, once)"
        )
        try:
            _create_venv(base_python(), tmp, cancel)
            _pip_install(_python_in(tmp), spec.requirements(), progress, cancel)
            versions = _freeze(_python_in(tmp))
            (tmp / _COMPLETE).write_text(
                json.dumps(
                    {
                        "key": spec.key(),
                        "libraries": dict(spec.libraries),
                        "python": spec.python_version,
                        "installed": versions,
                        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    },
                    indent=2,
                ),
                encoding="utf-8",
            )
            try:
                os.replace(tmp, final)
            except OSError:  # unlocked platforms: another process finished it first
                if not find_env(spec):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise MatchingEnvironmentError(
                f"Could not write the matching environment in {root} ({exc.strerror or exc}).",
                f"Check that there is room (about {3 * spec.download_mb()} MB) and that you "
                "may write there, or set MODELSHIP_ENV_CACHE to another folder.",
            ) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    progress.update(None, f"Made the matching environment with {spec.words()}")
    return str(_python_in(final))


@contextlib.contextmanager
def _build_lock(path: Path, progress: Progress, cancel: CancelToken) -> Iterator[None]:
    """One build per environment at a time; others wait for it (the OS drops the lock
    of a process that dies, so a crash never leaves a stale one)."""
    try:
        import fcntl
    except ImportError:  # Windows: the temporary folder is per process; carry on
        yield
        return
    with open(path, "w") as fh:
        said = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if not said:
                    progress.update(
                        None, "Waiting for another ModelShip to finish making the same environment"
                    )
                    said = True
                if cancel.cancelled:
                    raise Cancelled() from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _create_venv(python: str, where: Path, cancel: CancelToken) -> None:
    cancel.raise_if_cancelled()
    try:
        done = subprocess.run(
            [python, "-m", "venv", str(where)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MatchingEnvironmentError(
            f"Could not run {python} to make a Python environment ({exc}).",
            "Check that Python 3 with its venv module is installed.",
        ) from None
    if done.returncode != 0:
        text = (done.stderr or done.stdout or "").strip()
        hint = (
            "Install the venv module for this Python (on Debian/Ubuntu: apt install "
            "python3-venv), then try again."
            if "ensurepip" in text or "venv" in text
            else "Check that there is room in the cache folder, then try again."
        )
        raise MatchingEnvironmentError(
            f"Could not make a Python environment in {where.parent}.", hint, details=text
        )


def _pip_install(
    python: Path, requirements: list[str], progress: Progress, cancel: CancelToken
) -> None:
    cmd = [
        str(python),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        # wheels only: no compiler is needed, and a version without one for this
        # Python says so at once
        "--only-binary",
        ":all:",
        *requirements,
    ]
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # ModelShip's own packages must not leak in
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    env.pop("PIP_USER", None)  # a --user install would go outside the environment
    index = ""

    def summarize(line: str) -> None:
        nonlocal index
        if line.startswith("Looking in indexes:"):
            index = line.split(":", 1)[1].strip().split(",")[0].strip()
        elif line.startswith(("Collecting ", "Downloading ", "Installing collected")):
            word, _, rest = line.partition(" ")
            rest = rest.split(" (from ")[0]
            if word == "Downloading":  # "Downloading https://.../x.whl (12.3 MB)"
                rest = rest.rsplit("/", 1)[-1]
            progress.update(None, f"{word} {rest}"[:120])

    try:
        rc, tail = stream_pip(cmd, env, progress, cancel, summarize)
    except OSError as exc:
        raise MatchingEnvironmentError(
            f"Could not start pip in the new environment ({exc}).",
            "Check that Python 3 with its venv module is installed.",
        ) from None
    if rc == 0:
        return
    text = "\n".join(tail)
    raise _pip_error(text, index or _index_url(), requirements)


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX


def _pip_error(text: str, index: str, requirements: list[str]) -> MatchingEnvironmentError:
    lowered = text.lower()
    index = _redact(index)
    if any(sign in lowered for sign in NETWORK_SIGNS):
        return MatchingEnvironmentError(
            f"Could not reach the package index at {index} to make the matching environment.",
            "Check your network, your proxy (HTTPS_PROXY) or your mirror (PIP_INDEX_URL), "
            "then try again.",
            details=text,
        )
    missing = re.search(r"no matching distribution found for (\S+)", lowered)
    if missing:
        return MatchingEnvironmentError(
            f"The package index at {index} has no {missing.group(1)} for this computer's Python.",
            "Convert with the Python of the environment the model was trained in, or save "
            "the model again with a release that supports this Python.",
            details=text,
        )
    last = next((x for x in reversed(text.splitlines()) if x.startswith("ERROR")), "")
    return MatchingEnvironmentError(
        "pip could not install " + ", ".join(requirements[:3]) + f" ({last or 'no reason given'}).",
        "See the details; check your network and the package index, then try again.",
        details=text,
    )


def _redact(url: str) -> str:
    """An index URL without the password a mirror's URL may carry."""
    return re.sub(r"//[^/@]+@", "//***@", url)


def _freeze(python: Path) -> dict[str, str]:
    try:
        out = subprocess.run(
            [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        return {p["name"].lower(): p["version"] for p in json.loads(out)}
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return {}
