"""Text in, labels out: a BERT WordPiece tokenizer put into the ONNX graph, in front of an encoder.

The served artifact takes `text` (BYTES, `[-1]`) and returns `label` (BYTES) and `probabilities`,
so a client sends sentences and the tokenizer is versioned and verified with the weights. The
tokenizer is onnxruntime-extensions' `BertTokenizer` operator (domain `ai.onnx.contrib`), built
from a `tokenizers` JSON file (`tokenizer.json`). That operator tokenizes one sentence (two are
read as a pair), so a `Loop` runs it once per row, pads each row to `max_length`, and the batch is
then cut to its longest row: the encoder never runs on padding it does not need. After the
encoder: `Softmax` (probabilities), `ArgMax` and a `Gather` from the class names (label).

Where onnxruntime-extensions and `tokenizers` differ (README, "Transformers"): accents are
stripped and letters lowercased only in Latin-1, Cyrillic and some Greek, and full-width
punctuation does not split words; English text tokenizes the same (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .compress import BuildError
from .inspect_onnx import default_opset

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DOMAIN = "ai.onnx.contrib"


@dataclass(frozen=True)
class WordPiece:
    """What the graph's tokenizer needs of a `tokenizers` WordPiece tokenizer."""

    vocab: str  # every token, one per line, in id order
    lowercase: bool
    strip_accents: bool
    chinese_chars: bool
    unk: str
    cls: str
    sep: str
    pad: str
    pad_id: int
    prefix: str
    max_length: int | None  # where the tokenizer truncates, if it says


def wordpiece(document: dict[str, Any]) -> WordPiece:
    """Read a `tokenizer.json` document; refuse what the graph's tokenizer cannot reproduce."""
    try:
        return _wordpiece(document)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BuildError(f"tokenizer.json is malformed: {type(exc).__name__}: {exc}") from None


def _wordpiece(document: dict[str, Any]) -> WordPiece:
    model = document.get("model") or {}
    if model.get("type") != "WordPiece":
        raise BuildError(
            f"tokenizer.json: only a WordPiece (BERT-style) tokenizer can be put in the graph; "
            f"this one is {model.get('type') or 'of no known type'}"
        )
    normalizer = document.get("normalizer") or {"type": "none"}
    if normalizer["type"] not in ("BertNormalizer", "none"):
        raise BuildError(
            f"tokenizer.json: the normalizer must be BertNormalizer (or none); "
            f"this one is {normalizer['type']}"
        )
    pre = (document.get("pre_tokenizer") or {}).get("type")
    if pre != "BertPreTokenizer":
        raise BuildError(
            f"tokenizer.json: the pre-tokenizer must be BertPreTokenizer; this one is {pre}"
        )
    vocab: dict[str, int] = model["vocab"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    if [vocab[t] for t in tokens] != list(range(len(tokens))) or any(
        not t.strip() or "\n" in t for t in tokens
    ):
        raise BuildError("tokenizer.json: token ids must run 0..N-1, with no blank token")
    specials = _special_tokens(document)
    missing = [t for t in (model["unk_token"], *specials[:2]) if t not in vocab]
    if missing:
        raise BuildError(f"tokenizer.json: the vocabulary has no {', '.join(missing)}")
    lowercase = bool(normalizer.get("lowercase", False))
    accents = normalizer.get("strip_accents")
    pad = str((document.get("padding") or {}).get("pad_token") or "[PAD]")
    return WordPiece(
        vocab="\n".join(tokens),
        lowercase=lowercase,
        strip_accents=lowercase if accents is None else bool(accents),  # as BertNormalizer does
        chinese_chars=bool(normalizer.get("handle_chinese_chars", False)),
        unk=str(model["unk_token"]),
        cls=specials[0],
        sep=specials[1],
        pad=pad,
        pad_id=vocab.get(pad, 0),
        prefix=str(model.get("continuing_subword_prefix") or "##"),
        max_length=(document.get("truncation") or {}).get("max_length"),
    )


def _special_tokens(document: dict[str, Any]) -> tuple[str, str]:
    """The [CLS] and [SEP] tokens the post-processor wraps a sentence in."""
    post = document.get("post_processor") or {}
    if post.get("type") == "BertProcessing":
        return str(post["cls"][0]), str(post["sep"][0])
    if post.get("type") == "TemplateProcessing":
        single = [each.get("SpecialToken", {}).get("id") for each in post.get("single", [])]
        kinds = ["S" if each is not None else "A" for each in single]
        if kinds == ["S", "A", "S"]:
            return str(single[0]), str(single[2])
    raise BuildError(
        "tokenizer.json: the post-processor must wrap a sentence as [CLS] sentence [SEP] "
        "(BertProcessing, or TemplateProcessing '[CLS] $A [SEP]')"
    )


def tokenizer_graph(
    spec: WordPiece, *, max_length: int, outputs: tuple[str, ...], opset: int, ir_version: int
) -> Any:
    """`text` (STRING [batch]) -> `outputs` (INT64 [batch, longest row]), rows padded."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh

    def constant(name: str, value: object) -> Any:
        return oh.make_node(
            "Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(value), name)
        )

    rows = {
        "input_ids": "tok_ids_row",
        "attention_mask": "tok_mask_row",
        "token_type_ids": "tok_type_row",
    }
    body = oh.make_graph(
        [
            constant("tok_axis0", np.array([0], np.int64)),
            constant("tok_one", np.array([1], np.int64)),
            constant("tok_zero1", np.array([0], np.int64)),
            constant("tok_max", np.array([max_length], np.int64)),
            constant("tok_pad_id", np.array(spec.pad_id, np.int64)),
            constant("tok_zero", np.array(0, np.int64)),
            oh.make_node("Unsqueeze", ["tok_i", "tok_axis0"], ["tok_from"]),
            oh.make_node("Add", ["tok_from", "tok_one"], ["tok_to"]),
            oh.make_node("Slice", ["text", "tok_from", "tok_to", "tok_axis0"], ["tok_sentence"]),
            oh.make_node(
                "BertTokenizer",
                ["tok_sentence"],
                ["tok_ids", "tok_types", "tok_mask"],  # the operator's order
                domain=DOMAIN,
                vocab_file=spec.vocab,
                do_lower_case=int(spec.lowercase),
                strip_accents=int(spec.strip_accents),
                tokenize_chinese_chars=int(spec.chinese_chars),
                unk_token=spec.unk,
                cls_token=spec.cls,
                sep_token=spec.sep,
                pad_token=spec.pad,
                suffix_indicator=spec.prefix,
                max_length=max_length,
            ),
            oh.make_node("Shape", ["tok_ids"], ["tok_length"]),
            oh.make_node("Sub", ["tok_max", "tok_length"], ["tok_short"]),
            oh.make_node("Concat", ["tok_zero1", "tok_short"], ["tok_pads"], axis=0),
            oh.make_node("Pad", ["tok_ids", "tok_pads", "tok_pad_id"], ["tok_ids_row"]),
            oh.make_node("Pad", ["tok_mask", "tok_pads", "tok_zero"], ["tok_mask_row"]),
            oh.make_node("Pad", ["tok_types", "tok_pads", "tok_zero"], ["tok_type_row"]),
            oh.make_node("Identity", ["tok_go"], ["tok_go_on"]),
        ],
        "tokenize_one_row",
        [
            oh.make_tensor_value_info("tok_i", TensorProto.INT64, []),
            oh.make_tensor_value_info("tok_go", TensorProto.BOOL, []),
        ],
        [
            oh.make_tensor_value_info("tok_go_on", TensorProto.BOOL, []),
            *(
                oh.make_tensor_value_info(row, TensorProto.INT64, [max_length])
                for row in rows.values()
            ),
        ],
    )
    padded = {name: f"tok_{name}_padded" for name in rows}
    nodes = [
        oh.make_node("Shape", ["text"], ["tok_batch1"]),
        oh.make_node("Squeeze", ["tok_batch1"], ["tok_batch"]),
        constant("tok_true", np.array(True)),
        oh.make_node("Loop", ["tok_batch", "tok_true"], list(padded.values()), body=body),
        constant("tok_axis1", np.array([1], np.int64)),
        constant("tok_start", np.array([0], np.int64)),
        oh.make_node(
            "ReduceSum", [padded["attention_mask"], "tok_axis1"], ["tok_lengths"], keepdims=0
        ),
        oh.make_node("ReduceMax", ["tok_lengths"], ["tok_longest_row"], keepdims=1),
        # never under [CLS] [SEP]: an empty batch gives empty outputs, not a 0-long sequence
        constant("tok_shortest", np.array([2], np.int64)),
        oh.make_node("Max", ["tok_longest_row", "tok_shortest"], ["tok_longest"]),
        *(
            oh.make_node("Slice", [padded[name], "tok_start", "tok_longest", "tok_axis1"], [name])
            for name in outputs
        ),
    ]
    graph = oh.make_graph(
        nodes,
        "tokenizer",
        [oh.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [oh.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in outputs],
    )
    return oh.make_model(
        graph,
        opset_imports=[oh.make_opsetid("", opset), oh.make_opsetid(DOMAIN, 1)],
        ir_version=ir_version,
    )


ADDED = ("text", "label", "probabilities", "post_classes", "post_best")
DEFAULT_MAX_LENGTH = 512  # BERT's position table, where neither the caller nor the tokenizer says


def text_classifier(
    encoder: bytes, tokenizer: dict[str, Any], classes: list[str], *, max_length: int | None = None
) -> bytes:
    """The encoder (token ids in, logits out) with the tokenizer before it and labels after.

    `max_length` (word pieces, [CLS] and [SEP] included) defaults to where the tokenizer
    truncates, else 512: it must not exceed the encoder's position table.
    """
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh

    spec = wordpiece(tokenizer)
    max_length = max_length or spec.max_length or DEFAULT_MAX_LENGTH
    model = onnx.load_model_from_string(encoder)
    opset = default_opset(model)
    if opset < 13:
        raise BuildError(
            f"the encoder is opset {opset}; the tokenizer graph needs 13 or later (re-export it, "
            "or convert it with onnx.version_converter)"
        )
    graph = model.graph
    used = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
    taken = sorted(n for n in used if n in ADDED or n.startswith("tok_"))
    if taken:
        raise BuildError(
            f"the encoder already uses {', '.join(taken)}: names the text model adds around it "
            "(rename them in the encoder)"
        )
    initialized = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initialized]
    unknown = sorted(set(inputs) - set(ENCODER_INPUTS))
    if unknown or "input_ids" not in inputs:
        raise BuildError(
            f"the encoder's inputs must be input_ids and optionally attention_mask and "
            f"token_type_ids; it takes {', '.join(inputs)}"
        )
    floats = [o for o in graph.output if o.type.tensor_type.elem_type == TensorProto.FLOAT]
    if not floats:
        raise BuildError("the encoder has no float output (its logits) to classify with")
    logits = floats[0]
    width = [d.dim_value for d in logits.type.tensor_type.shape.dim]
    if len(width) != 2 or width[1] not in (0, len(classes)):
        raise BuildError(
            f"the encoder's output {logits.name} must be [batch, {len(classes)}] logits, one "
            f"per class; its shape is {width}"
        )
    names = np.asarray([c.encode() for c in classes], dtype=object)
    graph.initializer.append(onnx.numpy_helper.from_array(names, "post_classes"))
    graph.node.extend(
        [
            oh.make_node("Softmax", [logits.name], ["probabilities"], axis=-1),
            oh.make_node("ArgMax", [logits.name], ["post_best"], axis=-1, keepdims=0),
            oh.make_node("Gather", ["post_classes", "post_best"], ["label"], axis=0),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            oh.make_tensor_value_info("label", TensorProto.STRING, ["batch"]),
            oh.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(classes)]),
        ]
    )
    front = tokenizer_graph(
        spec,
        max_length=max_length,
        outputs=tuple(n for n in ENCODER_INPUTS if n in inputs),
        opset=opset,
        ir_version=model.ir_version,
    )
    merged = onnx.compose.merge_models(
        front, model, io_map=[(n, n) for n in ENCODER_INPUTS if n in inputs]
    )
    # merge_models keeps both models' opset lists: one entry per domain, or the quantizer fails
    versions: dict[str, int] = {}
    for each in merged.opset_import:
        domain = "" if each.domain == "ai.onnx" else each.domain
        versions[domain] = max(versions.get(domain, 0), each.version)
    del merged.opset_import[:]
    merged.opset_import.extend(oh.make_opsetid(d, v) for d, v in versions.items())
    data: bytes = merged.SerializeToString()
    return data
