"""The host-side wheelhouse: real pip, a cache that makes warm builds download nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import BuildError
from app.image.wheelhouse import download_args, ensure_wheelhouse
from app.progress import RecordingProgress


def _dead_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point pip at a closed port on this machine, with no other source of packages."""
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")  # 0 hides the connection error
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)


def test_download_args_target_the_image_platform(tmp_path: Path) -> None:
    args = download_args(tmp_path / "r.txt", tmp_path, python_version="3.12")
    assert args[:2] == ["download", "--only-binary=:all:"]
    joined = " ".join(args)
    assert "--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64" in joined
    assert "--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none" in joined
    with pytest.raises(BuildError, match="architecture"):
        download_args(tmp_path / "r.txt", tmp_path, arch="sparc")


def test_unreachable_index_names_the_proxy_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _dead_index(monkeypatch)
    with pytest.raises(BuildError) as info:
        ensure_wheelhouse("orjson\n", cache_root=tmp_path)
    err = info.value
    assert "package index" in err.message
    assert "HTTPS_PROXY" in (err.hint or "") and "PIP_INDEX_URL" in (err.hint or "")
    # nothing half-made is left in the cache
    assert not [p for p in (tmp_path / "wheelhouse").iterdir()]


@pytest.mark.slow
def test_warm_wheelhouse_downloads_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The second call is served from the cache even when the index is gone."""
    progress = RecordingProgress()
    try:
        first = ensure_wheelhouse("orjson\n", cache_root=tmp_path, progress=progress)
    except BuildError as exc:  # pragma: no cover - depends on the machine's network
        from tests.conftest import require

        require(False, f"the Python package index ({exc.message})")
        return
    assert first.downloaded
    assert any(w.startswith("orjson-") and "manylinux" in w for w in first.wheels)
    assert (first.path / "requirements.txt").read_text() == "orjson\n"

    _dead_index(monkeypatch)
    second = ensure_wheelhouse("orjson\n", cache_root=tmp_path)
    assert not second.downloaded
    assert second.path == first.path and second.wheels == first.wheels
