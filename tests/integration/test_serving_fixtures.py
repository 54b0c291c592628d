"""Real models and a real server process for the serving tests (and the benchmark).

Until ``modelship convert`` is used here, the models are made directly with skl2onnx
(classifiers without ZipMap, as convert makes them) and given the signature convert
writes. The server runs as its own process, as in an image, on a free port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.serving.signature import ColumnSpec, Signature, TensorSpec

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _save(onx, path: Path, sig: Signature) -> Path:
    path.write_bytes(onx.SerializeToString())
    sig.save(Signature.path_for(path))
    return path


def make_classifier(
    out: Path, *, n_features: int = 4, trees: int = 10, name: str = "iris", seed: int = 0
) -> tuple[Path, object, np.ndarray]:
    """A scaler + random forest pipeline on float features, 3 string classes."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, n_features)).astype(np.float32)
    y = np.array(["setosa", "versicolor", "virginica"])[
        (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    ]
    model = make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=trees, max_depth=8, random_state=0)
    )
    model.fit(x, y)
    onx = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    cols = [f"x{i}" for i in range(n_features)]
    sig = Signature(
        inputs=[TensorSpec("X", "float32", [None, n_features])],
        outputs=[
            TensorSpec("label", "str", [None]),
            TensorSpec("probabilities", "float32", [None, 3]),
        ],
        columns=[ColumnSpec(c, "float32", "X", i) for i, c in enumerate(cols)],
        task="classification",
        label_output="label",
        probability_output="probabilities",
        class_labels=list(model.classes_),
        framework="sklearn",
        model_name=name,
    )
    return _save(onx, out / f"{name}.onnx", sig), model, x


def make_regressor(out: Path, name: str = "price") -> tuple[Path, object, np.ndarray]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + 3
    model = Ridge().fit(x, y)
    onx = to_onnx(model, x[:1], target_opset=17)
    sig = Signature(
        inputs=[TensorSpec("X", "float32", [None, 3])],
        outputs=[TensorSpec("variable", "float32", [None, 1])],
        columns=[ColumnSpec(c, "float32", "X", i) for i, c in enumerate(["a", "b", "c"])],
        task="regression",
        label_output="variable",
        framework="sklearn",
        model_name=name,
    )
    return _save(onx, out / f"{name}.onnx", sig), model, x


def make_mixed(out: Path, name: str = "churn") -> tuple[Path, object, object]:
    """A ColumnTransformer with a string category and numbers: one [N, 1] input per column."""
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(2)
    n = 200
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(np.float32),
            "city": rng.choice(["Ulm", "Bonn", "Kiel"], n),
            "visits": rng.integers(0, 20, n).astype(np.int64),
        }
    )
    y = ((df["age"] > 40) ^ (df["city"] == "Ulm")).astype(int).to_numpy()
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "visits"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    model.fit(df, y)
    onx = to_onnx(model, df[:1], options={"zipmap": False}, target_opset=17)
    sig = Signature(
        inputs=[
            TensorSpec("age", "float32", [None, 1]),
            TensorSpec("city", "str", [None, 1]),
            TensorSpec("visits", "int64", [None, 1]),
        ],
        outputs=[
            TensorSpec("label", "int64", [None]),
            TensorSpec("probabilities", "float32", [None, 2]),
        ],
        columns=[
            ColumnSpec("age", "float32", "age", 0),
            ColumnSpec("city", "str", "city", 0),
            ColumnSpec("visits", "int64", "visits", 0),
        ],
        task="classification",
        label_output="label",
        probability_output="probabilities",
        class_labels=[0, 1],
        framework="sklearn",
        model_name=name,
    )
    return _save(onx, out / f"{name}.onnx", sig), model, df


def make_fixed_tensor(out: Path, name: str = "fixed") -> Path:
    """A tensor model with a fixed batch of 2 (no dynamic batch: batching must be off)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [2, 3])
    node = helper.make_node("ReduceSum", ["image", "axes"], ["score"], keepdims=0)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    graph = helper.make_graph([node], "g", [x], [y], initializer=[axes])
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onx.ir_version = 8
    sig = Signature(
        inputs=[TensorSpec("image", "float32", [2, 3, 4])],
        outputs=[TensorSpec("score", "float32", [2, 3])],
        task="other",
        framework="onnx",
        model_name=name,
    )
    return _save(onx, out / f"{name}.onnx", sig)


def make_mlp(out: Path, name: str = "mlp", hidden: int = 256, features: int = 256):
    """The benchmark's 256x256 MLP classifier (weights from a short fit)."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, features)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = MLPClassifier(hidden_layer_sizes=(hidden, hidden), max_iter=5, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    onx = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    sig = Signature(
        inputs=[TensorSpec("X", "float32", [None, features])],
        outputs=[
            TensorSpec("label", "int64", [None]),
            TensorSpec("probabilities", "float32", [None, 2]),
        ],
        columns=[ColumnSpec(f"f{i}", "float32", "X", i) for i in range(features)],
        task="classification",
        label_output="label",
        probability_output="probabilities",
        class_labels=[0, 1],
        model_name=name,
    )
    return _save(onx, out / f"{name}.onnx", sig), model, x


@dataclass
class ServerProcess:
    """``python -m app.serving`` as a child process on 127.0.0.1:port."""

    model: Path
    port: int = field(default_factory=free_port)
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        env = {**os.environ, "MODELSHIP_LOG_LEVEL": "warning", **self.env}
        env.pop("MODELSHIP_API_KEY", None) if "MODELSHIP_API_KEY" not in self.env else None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.serving",
                "serve",
                str(self.model),
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{out}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become ready in time")

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            self._output = self.proc.stdout.read().decode(errors="replace")
            self.proc.stdout.close()
        return self.proc.returncode

    _output: str = ""

    def output(self) -> str:
        """What the server printed (after stop())."""
        return self._output


def test_signatures_written_next_to_models(tmp_path: Path) -> None:
    """The helpers write what convert writes: MODEL.onnx plus MODEL.signature.json."""
    path, _, _ = make_classifier(tmp_path)
    sig = Signature.load(Signature.path_for(path))
    assert sig.class_labels == ["setosa", "versicolor", "virginica"]
    assert sig.has_dynamic_batch
    assert not Signature.load(Signature.path_for(make_fixed_tensor(tmp_path))).has_dynamic_batch
