"""The bundled sample: a small churn table and a model trained on it.

Only the CSV ships with ModelShip. The model is trained from it on first use with the
installed scikit-learn and cached, because a pickle loads reliably only with the
scikit-learn version that wrote it: a committed pickle would break on the next upgrade.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from app.paths import cache_dir

SAMPLE_CSV = "churn.csv"
TARGET = "churned"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "age"]
CATEGORICAL = ["plan"]


def sample_csv_path() -> Path:
    """Path of the bundled churn CSV (a real file, also in the packaged app)."""
    ref = resources.files("resources.samples").joinpath(SAMPLE_CSV)
    path = Path(str(ref))
    if path.is_file():
        return path
    # resources inside an archive: copy out once
    out = cache_dir() / "samples" / SAMPLE_CSV
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(ref.read_bytes())
    return out


def sample_model_path() -> Path:
    """The sample model (a scikit-learn Pipeline in joblib), trained on first use."""
    import sklearn

    # One folder per scikit-learn version (a pickle loads only with the version that
    # saved it); the file keeps a plain name, which becomes the deployment's name.
    out = cache_dir() / "samples" / f"sklearn-{sklearn.__version__}" / "churn.joblib"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    model = train_sample_model()
    import joblib

    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, out)  # atomic: a half-written model is never picked up
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def train_sample_model():
    """Scaler + one-hot encoder + logistic regression, fitted on the churn DataFrame."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_csv(sample_csv_path())
    X, y = df[NUMERIC + CATEGORICAL], df[TARGET]
    prep = ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMERIC),
            ("plan", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("prepare", prep), ("classify", LogisticRegression(max_iter=1000))]).fit(X, y)
