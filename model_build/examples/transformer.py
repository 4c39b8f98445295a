"""A BERT-style text classifier trained from scratch, with its tokenizer in the graph.

Built offline, no download: a WordPiece tokenizer trained with `tokenizers` on the training split
of `data/support_intents.csv` (the text example's data and grouped 75/25 split), a small
`transformers` BERT encoder (2 layers, hidden 256, 4 heads) trained on it in torch, exported to
ONNX with dynamic batch and sequence axes, and the tokenizer put in front of it as ONNX
(`model_build/textgraph.py`): the artifact takes sentences and returns labels.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from .base import Trained
from .text import load_intents

MAX_LENGTH = 64  # word pieces per sentence, [CLS] and [SEP] included (the position table's size)
VOCABULARY = 1000
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(texts: list[str], vocabulary: int = VOCABULARY) -> Any:
    """A BERT-style WordPiece tokenizer (lowercased, accents stripped) trained on `texts`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocabulary, special_tokens=SPECIALS, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    ids = {token: SPECIALS.index(token) for token in SPECIALS}  # the trainer puts them first
    assert all(tokenizer.token_to_id(token) == i for token, i in ids.items())
    tokenizer.post_processor = processors.BertProcessing(
        ("[SEP]", ids["[SEP]"]), ("[CLS]", ids["[CLS]"])
    )
    tokenizer.enable_padding(pad_id=ids["[PAD]"], pad_token="[PAD]")
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


def encode(tokenizer: Any, texts: list[str]) -> dict[str, np.ndarray]:
    """Token ids, attention mask and token types for a batch, padded to its longest row."""
    rows = tokenizer.encode_batch(texts)
    return {
        "input_ids": np.asarray([r.ids for r in rows], np.int64),
        "attention_mask": np.asarray([r.attention_mask for r in rows], np.int64),
        "token_type_ids": np.asarray([r.type_ids for r in rows], np.int64),
    }


def export_encoder(model: Any, sample: dict[str, np.ndarray]) -> bytes:
    """The torch encoder as ONNX (opset 18), batch and sequence dynamic, weights inline."""
    import torch

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=MAX_LENGTH)
    axes = {0: batch, 1: sequence}
    names = ["input_ids", "attention_mask", "token_type_ids"]  # the order forward() takes
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            args,
            input_names=names,
            output_names=["logits"],
            dynamic_shapes=(axes, axes, axes),
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
        assert program is not None
        target = Path(tmp) / "encoder.onnx"
        program.save(str(target), external_data=False)
        return target.read_bytes()


def train_transformer(
    quick: bool = False, progress: Callable[[int, int], None] | None = None
) -> Trained:
    """`text` (BYTES [-1]) in; `label` (BYTES) and `probabilities` out."""
    import orjson
    import torch
    from sklearn.model_selection import GroupShuffleSplit
    from transformers import BertConfig, BertForSequenceClassification

    from ..textgraph import text_classifier

    texts, intents, groups = load_intents()
    classes = sorted(set(intents))
    split = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
    train_idx, test_idx = next(split.split(texts, intents, groups))
    train_texts = [texts[i] for i in train_idx]
    test_texts = [texts[i] for i in test_idx]
    tokenizer = train_tokenizer(train_texts)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=MAX_LENGTH,
        num_labels=len(classes),
    )
    model = BertForSequenceClassification(config)
    features = {k: torch.from_numpy(v) for k, v in encode(tokenizer, train_texts).items()}
    targets = torch.tensor([classes.index(intents[i]) for i in train_idx])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    order = torch.Generator().manual_seed(0)
    epochs = 6 if quick else 12
    model.train()
    for epoch in range(epochs):
        shuffled = torch.randperm(len(train_texts), generator=order)
        for start in range(0, len(train_texts), 32):
            rows = shuffled[start : start + 32]
            loss = model(**{k: v[rows] for k, v in features.items()}, labels=targets[rows]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress:
            progress(epoch + 1, epochs)
    model.eval()
    encoder = export_encoder(model, encode(tokenizer, train_texts[:2]))
    artifact = text_classifier(
        encoder, orjson.loads(tokenizer.to_str()), classes, max_length=MAX_LENGTH
    )
    labels = np.asarray([classes.index(intents[i]) for i in test_idx], dtype=np.int64)
    return Trained(
        name="transformer",
        onnx_bytes=artifact,
        calibration={"text": np.asarray(train_texts[:32], dtype=object)},
        eval_inputs={"text": np.asarray(test_texts, dtype=object)},
        eval_labels=labels,
        score_output="probabilities",
        source={
            "framework": "transformers",
            "framework_version": version("transformers"),
            "exporter": f"torch.onnx (dynamo) {version('torch')}",
            "tokenizer": f"WordPiece, {tokenizer.get_vocab_size()} tokens, trained with "
            f"tokenizers {version('tokenizers')}; in the graph (onnxruntime-extensions "
            f"{version('onnxruntime-extensions')} BertTokenizer)",
            "architecture": "BERT: 2 layers, hidden 256, 4 heads, intermediate 1024",
            "dataset": "model_build/examples/data/support_intents.csv (grouped 75/25 split)",
            "classes": classes,
            "epochs": epochs,
        },
    )
