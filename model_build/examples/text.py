"""A text classifier: TF-IDF + logistic regression via skl2onnx, with a string (BYTES) input.

Trained on `data/support_intents.csv`: 541 short customer-support messages in four intents
(billing, delivery, technical, account), written for this project: 272 base sentences (72 written
by hand, 200 from shared phrasings around intent-specific subjects), each with two greetings or
sign-offs. The split keeps both variants of a base sentence on one side (`group`), so the
held-out score measures sentences the model has not seen.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from .base import Trained

DATA = Path(__file__).resolve().parent / "data" / "support_intents.csv"


def load_intents() -> tuple[list[str], list[str], list[int]]:
    """Texts, intents and base-sentence groups from the shipped CSV."""
    with DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["intent"] for r in rows], [int(r["group"]) for r in rows]


def train_text(quick: bool = False, progress: Callable[[int, int], None] | None = None) -> Trained:
    """`text` (BYTES [-1]) in; `label` (BYTES) and `probabilities` out."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.pipeline import make_pipeline

    texts, intents, groups = load_intents()
    split = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
    train_idx, test_idx = next(split.split(texts, intents, groups))
    x = np.asarray(texts, dtype=object)
    y = np.asarray(intents, dtype=object)
    # A word tokenizer onnxruntime reproduces exactly: lowercase, split on non-word characters.
    vectorizer = TfidfVectorizer(lowercase=True, token_pattern=r"\b\w\w+\b", ngram_range=(1, 1))
    pipeline = make_pipeline(vectorizer, LogisticRegression(max_iter=1000, C=10.0))
    pipeline.fit(x[train_idx], y[train_idx])
    if progress:
        progress(1, 1)
    classes = list(pipeline.classes_)
    model = to_onnx(
        pipeline,
        initial_types=[("text", StringTensorType([None]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    from .tabular import _rename

    _portable_locale(model)
    for output, new in zip(model.graph.output, ("label", "probabilities"), strict=True):
        _rename(model, output.name, new)
    labels = np.asarray([classes.index(v) for v in y[test_idx]], dtype=np.int64)
    return Trained(
        name="text",
        onnx_bytes=model.SerializeToString(),
        calibration={"text": x[train_idx][:32]},
        eval_inputs={"text": x[test_idx]},
        eval_labels=labels,
        score_output="probabilities",
        source={
            "framework": "scikit-learn",
            "framework_version": version("scikit-learn"),
            "exporter": f"skl2onnx {version('skl2onnx')}",
            "dataset": "model_build/examples/data/support_intents.csv (grouped 75/25 split)",
            "classes": classes,
        },
    )


def _portable_locale(model: object) -> None:
    """Lowercase with C.UTF-8, which glibc always has, not en_US.UTF-8, which slim images lack.

    onnxruntime's StringNormalizer otherwise fails to load: "Failed to construct locale with
    name:en_US.UTF-8" (seen here, and on minimal Lambda and container images).
    """
    from onnx import helper

    for node in model.graph.node:  # type: ignore[attr-defined]
        if node.op_type == "StringNormalizer":
            kept = [a for a in node.attribute if a.name != "locale"]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute("locale", "C.UTF-8")])
