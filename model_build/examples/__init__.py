"""Example models, trained for real on data this machine has."""

from __future__ import annotations

from .base import Example, Trained
from .cnn import train_cnn
from .digits import as_example as train_digits_example
from .tabular import train_tabular
from .text import train_text
from .transformer import train_transformer

EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example(
            "cnn", "torch CNN on 8x8 digits images (image FP32 [-1,1,8,8] -> logits)", train_cnn
        ),
        Example(
            "digits",
            "scikit-learn scaler + logistic regression on digits (64 pixels)",
            train_digits_example,
        ),
        Example(
            "tabular", "scikit-learn scaler + MLP on breast_cancer (30 features)", train_tabular
        ),
        Example(
            "text", "TF-IDF + logistic regression on support messages (string input)", train_text
        ),
        Example(
            "transformer",
            "BERT-style encoder trained from scratch on support messages, tokenizer in the graph",
            train_transformer,
        ),
    )
}

__all__ = ["EXAMPLES", "Example", "Trained"]
