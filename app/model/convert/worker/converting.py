"""Converting a tabular model to ONNX: skl2onnx with the boosters' converters
registered, onnxmltools, CatBoost's own export."""

from __future__ import annotations

import copy
import os
import traceback

from .common import ML_OPSET, ONNX_OPSET, ONNXMLTOOLS_OPSET, WorkerError, first_line, need
from .describing import final_estimator, is_booster, walk


def fix_tree_missing_flags() -> None:
    """skl2onnx (1.20 and earlier) passes a HistGradientBoosting leaf's "missing goes
    left" flag as a Python bool into an INTS attribute, which onnx 1.23's protobuf
    refuses ("Expected an int, got a boolean"), so no HistGradientBoosting* model would
    convert. The flag is 0 or 1 either way: hand it over as an int. Conversion-time only;
    a skl2onnx without that helper (or already fixed) is left as it is."""
    try:
        from skl2onnx.common import tree_ensemble
    except ImportError:
        return
    original = getattr(tree_ensemble, "add_node", None)
    if original is None or getattr(original, "_modelship_int_flags", False):
        return

    def add_node(*args: object, **kwargs: object) -> object:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if isinstance(flag, bool) or type(flag).__name__ == "bool_":
            kwargs["nodes_missing_value_tracks_true"] = int(flag)  # type: ignore[call-overload]
        return original(*args, **kwargs)

    add_node._modelship_int_flags = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def register_boosters() -> None:
    """Let skl2onnx convert XGBoost/LightGBM estimators, also inside pipelines."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    opts = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=opts,
        )
        update_registered_converter(
            XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    except ImportError:
        pass
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=opts,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )
    except ImportError:
        pass


SUPPORTED_HINT = (
    "Supported: scikit-learn estimators that skl2onnx knows (linear models, trees, forests, "
    "boosting, SVM, k-NN, naive Bayes, MLP, pipelines, ColumnTransformer, common "
    "preprocessing), XGBoost, LightGBM, PyTorch. Retrain with one of those, or export to "
    "ONNX yourself and give ModelShip the .onnx file."
)


def check_supported(model: object) -> None:
    """Name every estimator in the model that skl2onnx has no converter for."""
    need("skl2onnx", "skl2onnx")
    if uses_boosters(model):
        register_boosters()
    from skl2onnx._supported_operators import sklearn_operator_name_map

    missing = sorted(
        {
            f"{type(e).__module__.split('.')[0]} {type(e).__name__}"
            for e in walk(model)
            if not isinstance(e, str) and e is not None and type(e) not in sklearn_operator_name_map
        }
    )
    if missing:
        raise WorkerError(
            "unsupported",
            f"The model contains {', '.join(missing)}, which cannot be converted to ONNX.",
            SUPPORTED_HINT,
        )
    final = final_estimator(model)
    if not hasattr(final, "predict"):
        raise WorkerError(
            "unsupported",
            f"{type(final).__name__} only transforms data; it is not a model that predicts.",
            "Save the whole fitted pipeline that ends in a classifier or regressor.",
        )


def strip_xgb_feature_names(model: object) -> object:
    """onnxmltools only understands XGBoost feature names f0, f1, ...: drop real ones."""
    if not any(hasattr(e, "get_booster") for e in walk(model)):
        return model
    model = copy.deepcopy(model)
    for est in walk(model):
        if hasattr(est, "get_booster"):
            est.get_booster().feature_names = None
            est.get_booster().feature_types = None
    return model


def uses_boosters(model: object) -> bool:
    return any(type(e).__module__.split(".")[0] in ("xgboost", "lightgbm") for e in walk(model))


def is_tree_model(est: object) -> bool:
    """Decision trees and their ensembles (scikit-learn's, XGBoost's, LightGBM's)."""
    mod = type(est).__module__
    return mod.split(".")[0] in ("xgboost", "lightgbm") or mod.startswith(
        ("sklearn.tree", "sklearn.ensemble")
    )


def trees_after_transform(model: object) -> bool:
    """A tree model fed by a transform that computes in floating point (a scaler, an
    imputer, a ColumnTransformer, ...): the case where float32 is not exact.

    A tree compares a value with a threshold, so rounding the value to float32 in a
    different place than the original does can put it on the other side of a split,
    and that row gets another leaf: a different answer, not a close one. On the raw
    input float32 is exact (scikit-learn's and XGBoost's trees cast their input to
    float32 themselves), and so it is for models without splits (linear models).
    """
    if not getattr(model, "steps", None):
        return False
    final = final_estimator(model)
    if not is_tree_model(final):
        return False
    return any(
        e is not model
        and e is not final
        and not isinstance(e, str)
        and e is not None
        and not getattr(e, "steps", None)
        for e in walk(model)
    )


def cast_before_final(model: object) -> object:
    """A copy of the pipeline with a cast to float32 right before its final estimator.

    skl2onnx's documented way to convert "a transform, then trees" exactly
    (https://onnx.ai/sklearn-onnx/auto_tutorial/plot_ebegin_float_double.html): the
    graph takes doubles, computes the transform in double as scikit-learn does, then
    casts to float32 where the original's trees do (scikit-learn and XGBoost trees
    cast their input to float32; skl2onnx's float thresholds are chosen so that
    ``(float)x <= threshold`` decides each split as the original).
    """
    import numpy as np
    from skl2onnx.sklapi import CastTransformer

    model = copy.deepcopy(model)
    pipe = model
    for _ in range(20):
        steps = pipe.steps
        i = max(j for j, (_, e) in enumerate(steps) if not isinstance(e, str) and e is not None)
        last = steps[i][1]
        if getattr(last, "steps", None):
            pipe = last
            continue
        steps.insert(i, ("modelship_float32", CastTransformer(dtype=np.float32)))
        break
    return model


def convert_tabular(model: object, desc: dict) -> object:
    """The ONNX graph of a tabular model; sets ``desc["precision"]`` to the dtype of
    its numeric inputs (float32, or float64 where float32 would change answers)."""
    booster = is_booster(model)
    n = len(desc["names"])
    desc["precision"] = "float32"
    if booster in ("xgboost", "lightgbm"):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType as MLFloat
    if booster == "catboost":
        return convert_catboost(model, desc)
    if booster == "xgboost":
        b = model.copy()
        b.feature_names = None
        b.feature_types = None
        return onnxmltools.convert_xgboost(
            b, initial_types=[("input", MLFloat([None, n]))], target_opset=ONNXMLTOOLS_OPSET
        )
    if booster == "lightgbm":
        return onnxmltools.convert_lightgbm(
            model,
            initial_types=[("input", MLFloat([None, n]))],
            target_opset=ONNXMLTOOLS_OPSET,
            zipmap=False,
        )
    need("skl2onnx", "skl2onnx")
    if uses_boosters(model):
        register_boosters()
    fix_tree_missing_flags()
    if trees_after_transform(model):
        try:
            onx = convert_sklearn_as(model, desc, "float64")
            desc["precision"] = "float64"
            return onx
        except WorkerError:
            raise
        except Exception as exc:  # a transform without a double converter: float32 then
            desc["precision_note"] = (
                "The model was converted in float32 (single precision): its transform cannot "
                f"be converted in double precision ({first_line(exc)[:200]}), so a value "
                "very close to a tree's split may land on the other side."
            )
    return convert_sklearn_as(model, desc, "float32")


def convert_sklearn_as(model: object, desc: dict, precision: str) -> object:
    """skl2onnx's conversion with numeric inputs of ``precision`` (float32 or float64,
    the latter with a cast to float32 before the trees: see cast_before_final)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    n = len(desc["names"])
    num = DoubleTensorType if precision == "float64" else FloatTensorType
    if desc["per_column"]:
        types = [
            (c, StringTensorType([None, 1]) if c in desc["str_cols"] else num([None, 1]))
            for c in desc["names"]
        ]
    else:
        types = [("input", num([None, n]))]
    final = final_estimator(model)
    conv_model = strip_xgb_feature_names(model)
    if precision == "float64":
        conv_model = cast_before_final(conv_model)
    conv_final = final_estimator(conv_model)
    options = {id(conv_final): {"zipmap": False}} if hasattr(final, "classes_") else None
    try:
        return convert_sklearn(
            conv_model,
            initial_types=types,
            options=options,
            target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
        )
    except Exception as exc:
        text = str(exc)
        if "shape calculator" in text or ("converter" in text.lower() and "not" in text):
            names = sorted({f"{type(e).__module__}.{type(e).__name__}" for e in walk(model)})
            raise WorkerError(
                "unsupported",
                f"skl2onnx cannot convert this model ({', '.join(names)}): {text.splitlines()[0]}",
                SUPPORTED_HINT,
                details=traceback.format_exc(),
            ) from None
        raise


def convert_catboost(model: object, desc: dict) -> object:
    """CatBoost's own ONNX export, with its class probabilities as a plain tensor.

    CatBoost ends a classifier's graph in a ZipMap (a list of {label: probability}
    maps); the serving runtime and the proof take the tensor that feeds it, so the
    ZipMap is cut off and that tensor becomes the ``probabilities`` output.
    """
    import tempfile

    onnx = need("onnx", "onnx")
    with tempfile.TemporaryDirectory(prefix="modelship-catboost-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        model.save_model(path, format="onnx")
        onx = onnx.load(path)
    graph = onx.graph
    # one float input, named as every tabular model's is here ("input", not "features")
    for inp in graph.input:
        if inp.name != "input":
            old = inp.name
            inp.name = "input"
            for node in graph.node:
                for j, name in enumerate(node.input):
                    if name == old:
                        node.input[j] = "input"
    zipmaps = [n for n in graph.node if n.op_type == "ZipMap"]
    for zm in zipmaps:
        src, dst = zm.input[0], zm.output[0]
        graph.node.remove(zm)
        for i, out in enumerate(list(graph.output)):
            if out.name == dst:
                k = len(desc["classes"] or []) or None
                graph.output.remove(out)
                graph.output.insert(
                    i,
                    onnx.helper.make_tensor_value_info(
                        "probabilities", onnx.TensorProto.FLOAT, ["N", k]
                    ),
                )
                # the tensor keeps its place in the graph under the output's name
                for node in graph.node:
                    for j, name in enumerate(node.output):
                        if name == src:
                            node.output[j] = "probabilities"
                    for j, name in enumerate(node.input):
                        if name == src:
                            node.input[j] = "probabilities"
    return onx
