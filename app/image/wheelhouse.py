"""The image's Python packages, downloaded on the host and installed offline in the image.

Containers often cannot reach a package index (proxies, TLS interception, lab
networks with no internet), but the host that runs ModelShip can. So the serving
runtime's wheels are fetched here, for the *image's* platform and Python, and the
Dockerfile installs them with ``pip install --no-index``. The result is cached in
``app.paths.cache_dir()`` keyed by the requirements' content and the target platform,
so a warm build downloads nothing.

Issue 6 runs this from a frozen executable with no Python of its own: the pip
invocation lives in :func:`pip_command` alone so that it can be swapped.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app import paths, runtime
from app.errors import BuildError, Cancelled
from app.progress import CancelToken, NullProgress, Progress

# Used until app/serving/requirements.txt exists (the serving runtime's own list).
DEFAULT_REQUIREMENTS = "onnxruntime\nnumpy\nuvicorn\nhttptools\norjson\n"

# manylinux tags per machine architecture, newest first.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
    "aarch64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
}
COMPLETE_MARKER = ".modelship-wheelhouse.json"


@dataclass(frozen=True)
class Wheelhouse:
    """A folder of wheels plus the requirements file they satisfy."""

    path: Path
    requirements: Path
    wheels: tuple[str, ...]
    downloaded: bool  # False when it came from the cache

    @property
    def size_bytes(self) -> int:
        return sum((self.path / w).stat().st_size for w in self.wheels)


def serving_requirements_path() -> Path:
    """The serving runtime's requirements (owned by app/serving)."""
    return Path(__file__).resolve().parent.parent / "serving" / "requirements.txt"


def serving_requirements_text() -> str:
    path = serving_requirements_path()
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return DEFAULT_REQUIREMENTS


def pip_command() -> list[str]:
    """How to run pip on the host: app.runtime knows the frozen-bundle case."""
    return runtime.pip_command()


def download_args(
    requirements: Path, dest: Path, *, arch: str = "x86_64", python_version: str = "3.11"
) -> list[str]:
    """`pip download` arguments for wheels that install on the image's platform."""
    if arch not in PLATFORM_TAGS:
        raise BuildError(
            f"Images for the {arch} architecture are not supported.",
            f"Choose one of: {', '.join(PLATFORM_TAGS)}.",
        )
    abi = "cp" + python_version.replace(".", "")
    args = ["download", "--only-binary=:all:", "--progress-bar", "off"]
    for tag in PLATFORM_TAGS[arch]:
        args += ["--platform", tag]
    args += ["--python-version", python_version, "--implementation", "cp"]
    args += ["--abi", abi, "--abi", "abi3", "--abi", "none"]
    args += ["-r", str(requirements), "-d", str(dest)]
    return args


def cache_key(requirements_text: str, *, arch: str, python_version: str) -> str:
    h = hashlib.sha256()
    h.update(requirements_text.encode("utf-8"))
    h.update(f"\0{arch}\0{python_version}".encode())
    return f"py{python_version}-{arch}-{h.hexdigest()[:16]}"


def ensure_wheelhouse(
    requirements_text: str | None = None,
    *,
    arch: str = "x86_64",
    python_version: str = "3.11",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache_root: Path | None = None,
) -> Wheelhouse:
    """Return a cached wheelhouse for these requirements, downloading it if needed."""
    progress = progress or NullProgress()
    text = requirements_text if requirements_text is not None else serving_requirements_text()
    key = cache_key(text, arch=arch, python_version=python_version)
    root = (cache_root or paths.cache_dir()) / "wheelhouse"
    final = root / key
    cached = _read_complete(final)
    if cached is not None:
        progress.update(1.0, f"Using cached packages ({len(cached)} wheels)")
        return Wheelhouse(final, final / "requirements.txt", tuple(cached), downloaded=False)

    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        req = work / "requirements.txt"
        req.write_text(text, encoding="utf-8")
        progress.update(None, "Downloading the serving runtime's packages for the image")
        _run_pip(
            download_args(req, work, arch=arch, python_version=python_version), progress, cancel
        )
        wheels = sorted(p.name for p in work.glob("*.whl"))
        if not wheels:
            raise BuildError("pip downloaded no packages for the image.", _NETWORK_HINT)
        (work / COMPLETE_MARKER).write_text(json.dumps({"wheels": wheels}), encoding="utf-8")
        try:
            os.replace(work, final)
        except OSError:
            # Another build finished the same wheelhouse first: use theirs.
            if _read_complete(final) is None:
                raise
            shutil.rmtree(work, ignore_errors=True)
            wheels = _read_complete(final) or wheels
        progress.update(1.0, f"Downloaded {len(wheels)} packages")
        return Wheelhouse(final, final / "requirements.txt", tuple(wheels), downloaded=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _read_complete(path: Path) -> list[str] | None:
    marker = path / COMPLETE_MARKER
    try:
        wheels = json.loads(marker.read_text(encoding="utf-8"))["wheels"]
    except (OSError, ValueError, KeyError):
        return None
    if all((path / w).is_file() for w in wheels):
        return list(wheels)
    return None


_NETWORK_HINT = (
    "Check that this computer can reach the Python package index. Behind a proxy, set "
    "HTTPS_PROXY (and HTTP_PROXY); to use a local mirror, set PIP_INDEX_URL. pip honours both."
)
NETWORK_SIGNS = (
    "connection",
    "proxy",
    "max retries",
    "temporary failure in name resolution",
    "name or service not known",
    "ssl",
    "timed out",
    "network is unreachable",
)
"""Words in pip's output that mean the package index could not be reached."""


def stream_pip(
    cmd: list[str],
    env: dict[str, str],
    progress: Progress,
    cancel: CancelToken | None,
    on_line: Callable[[str], None],
) -> tuple[int, list[str]]:
    """Run a pip command: every line goes to ``progress.log`` and ``on_line``; Cancel
    kills pip at once, also while it says nothing (a large download), because its output
    is read on a thread. Returns pip's exit code and its last lines. Raises ``OSError``
    when pip cannot be started (the caller says what that means for the user)."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    tail: deque[str] = deque(maxlen=40)
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw)
        lines.put(None)

    reader = threading.Thread(target=pump, name="modelship-pip", daemon=True)
    reader.start()
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            try:
                raw = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if raw is None:
                break
            line = raw.rstrip()
            if not line:
                continue
            tail.append(line)
            progress.log(line)
            on_line(line)
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        reader.join(timeout=5)
        proc.stdout.close()
    return rc, list(tail)


def _run_pip(args: list[str], progress: Progress, cancel: CancelToken | None) -> None:
    def summarize(line: str) -> None:
        if line.startswith(("Collecting ", "Saved ")):
            # "Collecting numpy>=1.26 (from -r /long/path...)" -> "Collecting numpy>=1.26"
            word, _, rest = line.partition(" ")
            rest = rest.split(" (from ")[0]
            progress.update(None, f"{word} {Path(rest).name if word == 'Saved' else rest}")

    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    try:
        rc, tail = stream_pip(pip_command() + args, env, progress, cancel, summarize)
    except OSError as exc:
        raise BuildError(
            f"Could not start pip to download the image's packages ({exc}).",
            "Reinstall ModelShip; its Python environment is incomplete.",
        ) from exc
    if rc == 0:
        return
    text = "\n".join(tail)
    lowered = text.lower()
    last = next(
        (x for x in reversed(tail) if x.startswith("ERROR")), tail[-1] if tail else "no output"
    )
    if any(sign in lowered for sign in NETWORK_SIGNS):
        raise BuildError(
            "Could not reach the Python package index to download the image's packages.",
            _NETWORK_HINT,
            details=text,
        )
    if "from versions: none" in lowered:
        raise BuildError(
            "The Python package index gave no usable version of the image's packages "
            f"({last.removeprefix('ERROR: ')}): it may be unreachable, or have no wheels for "
            "the image's platform.",
            _NETWORK_HINT,
            details=text,
        )
    raise BuildError(
        f"Could not download the image's packages: {last}",
        _NETWORK_HINT
        + " If the index answers, a package may have no wheel for the image's platform.",
        details=text,
    )
