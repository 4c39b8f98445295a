"""Shard plans and `maas batch --workers`: a file scored in shards equals it scored whole."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pytest

from functions.batch.fanout import combine, failure, run_shard, score_locally
from functions.batch.formats import FormatError, Lines, read_chunks
from functions.batch.job import run_job
from functions.batch.shards import Plan, Window, plan_shards, read_shard
from functions.core.cache import ArtifactCache
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.runner import Runner
from functions.core.sessions import OrtSessionFactory
from functions.stores import LocalStore
from tests.batch.conftest import npz_bytes
from tests.conftest import publish
from tests.model_build.test_cli import maas
from tests.models import multi_io


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, artifacts: dict[str, bytes]) -> Path:
    root = tmp_path_factory.mktemp("shards") / "store"
    repo = Repository(LocalStore(root))
    publish(repo, "digits", artifacts["digits"])
    publish(repo, "multi", multi_io())
    return root


def runner_for(store: Path, tmp_path: Path, name: str) -> Runner:
    registry = Registry(
        repository=Repository(LocalStore(store)),
        cache=ArtifactCache(tmp_path / "cache"),
        session_factory=OrtSessionFactory(intra_op_threads=1),
    )
    return registry.runner(name, "1")


def digits_rows(n: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 17, size=(n, 64)).astype(np.float32)


def csv_bytes(rows: np.ndarray, blank_every: int = 0) -> bytes:
    lines = [",".join(f"p{i}" for i in range(rows.shape[1]))]
    for n, row in enumerate(rows, start=1):
        lines.append(",".join(str(int(v)) for v in row))
        if blank_every and n % blank_every == 0:
            lines.append("")
    return ("\n".join(lines) + "\n").encode()


def jsonl_bytes(rows: np.ndarray) -> bytes:
    return b"".join(orjson.dumps(row.tolist()) + b"\n" for row in rows)


def npy_bytes(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


def same_predictions(got: Path, want: Path) -> None:
    """Equal labels; probabilities equal up to onnxruntime's rounding, which varies with the
    batch size (a shard's chunks are not the whole file's)."""
    a = [orjson.loads(line) for line in got.read_bytes().splitlines()]
    b = [orjson.loads(line) for line in want.read_bytes().splitlines()]
    assert len(a) == len(b) and [r["label"] for r in a] == [r["label"] for r in b]
    np.testing.assert_allclose(
        [r["probabilities"] for r in a], [r["probabilities"] for r in b], rtol=0, atol=1e-6
    )


def open_ranges(path: Path) -> tuple[io.BufferedReader, object]:
    handle = path.open("rb")

    def open_range(start: int, end: int) -> io.BufferedReader:
        return io.BufferedReader(Window(handle, start, end))

    return handle, open_range


def shards_read(plan: Plan, runner: Runner, path: Path) -> dict[str, np.ndarray]:
    """Every shard's chunks, in order, joined per input."""
    handle, open_range = open_ranges(path)
    got: dict[str, list[np.ndarray]] = {}
    with handle:
        for shard in plan.shards:
            for chunk in read_shard(plan, shard, runner.manifest.inputs, 7, open_range, Lines()):  # type: ignore[arg-type]
                for name, array in chunk.items():
                    got.setdefault(name, []).append(array)
    return {name: np.concatenate(parts) for name, parts in got.items()}


def whole_read(runner: Runner, path: Path) -> dict[str, np.ndarray]:
    with path.open("rb") as stream:
        chunks = list(read_chunks(stream, path.suffix, runner.manifest.inputs, 1000))
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".npy", ".npz"])
def test_the_shards_of_a_file_hold_its_rows_once_in_order(
    suffix: str, store: Path, tmp_path: Path
) -> None:
    # Given a file of 301 rows (the .csv with blank lines) cut into shards of ~1 KB
    rows = digits_rows(301)
    model = "multi" if suffix == ".npz" else "digits"
    runner = runner_for(store, tmp_path, model)
    path = tmp_path / f"in{suffix}"
    ids = np.arange(301, dtype=np.int64)
    path.write_bytes(
        {
            ".csv": lambda: csv_bytes(rows, blank_every=50),
            ".jsonl": lambda: jsonl_bytes(rows),
            ".npy": lambda: npy_bytes(rows),
            ".npz": lambda: npz_bytes(features=rows[:, :4].copy(), ids=ids),
        }[suffix]()
    )
    with path.open("rb") as handle:
        plan = plan_shards(handle, path.stat().st_size, suffix, runner.manifest.inputs, 1024)
    # Then there are many shards, their byte ranges tile the data, and read together they
    # give exactly the rows the whole file gives
    assert len(plan.shards) > 5
    assert Plan.from_json(orjson.loads(orjson.dumps(plan.to_json()))) == plan
    spans = [s.ranges[next(iter(s.ranges))] for s in plan.shards]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    got, want = shards_read(plan, runner, path), whole_read(runner, path)
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_scored_on_two_workers_equals_scored_whole(
    suffix: str, store: Path, tmp_path: Path
) -> None:
    rows = digits_rows(2000)
    model = "multi" if suffix == ".npz" else "digits"
    runner = runner_for(store, tmp_path, model)
    path = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        path.write_bytes(csv_bytes(rows))
    else:
        path.write_bytes(npz_bytes(features=rows[:, :4].copy(), ids=np.arange(2000)))
    out_suffix = ".jsonl" if suffix == ".csv" else ".npz"
    with path.open("rb") as stream:
        run_job(
            stream,
            suffix=suffix,
            runner=runner,
            out=tmp_path / f"whole{out_suffix}",
            chunk_rows=256,
        )
    plan, results, total = score_locally(
        path,
        runner=runner,
        store=str(store),
        workers=2,
        out=tmp_path / f"sharded{out_suffix}",
        chunk_rows=256,
        shard_bytes=8192,
    )
    assert total == 2000 and len(plan.shards) > 4
    assert sum(r["rows"] for r in results) == 2000
    if suffix == ".csv":
        same_predictions(tmp_path / "sharded.jsonl", tmp_path / "whole.jsonl")
    else:
        with np.load(tmp_path / "sharded.npz") as got, np.load(tmp_path / "whole.npz") as want:
            assert sorted(got.files) == sorted(want.files)
            for name in want.files:
                np.testing.assert_array_equal(got[name], want[name])
    assert not list(tmp_path.glob(".maas-shards-*"))  # the parts are gone


def test_a_poison_line_names_its_line_in_the_file_and_withholds_the_output(
    store: Path, tmp_path: Path
) -> None:
    # Given 1,000 rows where line 601 (row 600) has a field that is not a number
    rows = digits_rows(1000)
    text = csv_bytes(rows).decode().split("\n")
    text[600] = text[600].replace(",", ",x", 1)
    path = tmp_path / "poison.csv"
    path.write_text("\n".join(text))
    runner = runner_for(store, tmp_path, "digits")
    with pytest.raises(FormatError) as caught:
        score_locally(
            path,
            runner=runner,
            store=str(store),
            workers=2,
            out=tmp_path / "out.jsonl",
            chunk_rows=64,
            shard_bytes=4096,
        )
    message = str(caught.value)
    # Then the error names the shard, its bytes and the line of the file, and nothing is written
    assert re.fullmatch(
        r"1 of (\d+) shards failed, so the output is withheld \((\d+) shards' parts are kept\): "
        r"shard \d+ of \1 \(bytes [\d,]+-[\d,]+\): line 601, input 'pixels': "
        r"could not convert string to float: 'x\d+'",
        message,
    ), message
    assert not (tmp_path / "out.jsonl").exists()
    # The same file whole says the same line
    with path.open("rb") as stream, pytest.raises(FormatError, match="^line 601, input '"):
        run_job(stream, suffix=".csv", runner=runner, out=tmp_path / "w.jsonl", chunk_rows=64)


def test_a_shard_after_a_failed_shard_names_its_line_within_the_shard(
    store: Path, tmp_path: Path
) -> None:
    runner = runner_for(store, tmp_path, "digits")
    path = tmp_path / "two.jsonl"
    path.write_bytes(b"[1]\n" * 10)
    with path.open("rb") as handle:
        plan = plan_shards(handle, 40, ".jsonl", runner.manifest.inputs, 8)
    results = [
        {"index": 0, "status": "error", "line": 2, "detail": " is not valid JSON: x"},
        {"index": 1, "status": "error", "line": 1, "detail": " is not valid JSON: y"},
    ] + [{"index": i, "status": "ok", "rows": 2, "lines": 2} for i in range(2, len(plan.shards))]
    message = failure(plan, results)
    assert message is not None
    assert "shard 1 of 5 (bytes 0-7): line 2 is not valid JSON: x" in message
    assert "shard 2 of 5 (bytes 8-15): line 1 of the shard is not valid JSON: y" in message
    assert failure(plan, [{"status": "ok", "lines": 1}] * len(plan.shards)) is None
    assert "no result" in str(failure(plan, [None] * len(plan.shards)))


def test_a_compressed_npz_is_refused_for_sharding(store: Path, tmp_path: Path) -> None:
    runner = runner_for(store, tmp_path, "multi")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=np.ones((10, 4), np.float32), ids=np.arange(10))
    with pytest.raises(FormatError, match="compressed.*np.savez"):
        plan_shards(buffer, len(buffer.getvalue()), ".npz", runner.manifest.inputs, 64)


def test_an_empty_shard_and_the_combining_step(store: Path, tmp_path: Path) -> None:
    # A stretch of blank lines makes a shard with no rows: its part is empty and skipped
    runner = runner_for(store, tmp_path, "digits")
    rows = digits_rows(3)
    path = tmp_path / "gaps.jsonl"
    path.write_bytes(jsonl_bytes(rows[:1]) + b"\n" * 3000 + jsonl_bytes(rows[1:]))
    with path.open("rb") as handle:
        plan = plan_shards(handle, path.stat().st_size, ".jsonl", runner.manifest.inputs, 1024)
    handle, open_range = open_ranges(path)
    parts, results = [], []
    with handle:
        for shard in plan.shards:
            part = tmp_path / f"part-{shard.index}"
            results.append(
                run_shard(plan, shard, runner=runner, open_range=open_range, out=part, chunk_rows=2)  # type: ignore[arg-type]
            )
            parts.append(part)
    assert [r["status"] for r in results] == ["ok"] * len(plan.shards)
    assert [r["rows"] for r in results].count(0) >= 1
    assert sum(r["lines"] for r in results) == 3003
    assert combine(plan, runner.manifest, parts, tmp_path / "out.jsonl", 2) == 3
    with path.open("rb") as stream:
        run_job(stream, suffix=".jsonl", runner=runner, out=tmp_path / "whole.jsonl", chunk_rows=2)
    same_predictions(tmp_path / "out.jsonl", tmp_path / "whole.jsonl")


def test_maas_batch_with_workers(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(digits_rows(500)))
    env = {"MAAS_CACHE_DIR": str(tmp_path / "c"), "MAAS_BATCH_SHARD_BYTES": "4096"}
    args = ["batch", str(path), "--model", "digits", "--store", str(store), "--workers", "2"]
    ok = maas(*args, "--out", str(tmp_path / "out.jsonl"), env=env)
    assert ok.returncode == 0, ok.stderr
    summary = orjson.loads(ok.stdout)
    assert summary["rows"] == 500 and summary["workers"] == 2 and summary["shards"] > 2
    whole = maas(*args[:-2], "--out", str(tmp_path / "whole.jsonl"), env=env)
    assert whole.returncode == 0, whole.stderr
    same_predictions(tmp_path / "out.jsonl", tmp_path / "whole.jsonl")
    assert zipfile.is_zipfile(tmp_path / "out.jsonl") is False


def test_the_fast_csv_reader_and_the_exact_one_agree() -> None:
    from functions.core.manifest import TensorSpec

    spec = (TensorSpec("x", "FP32", (-1, 3)),)
    values = np.random.default_rng(3).standard_normal((300, 3)) * 1000
    lines = ["a,b,c"] + [",".join(repr(float(v)) for v in row) for row in values]
    lines[250] = ",".join(
        f'"{float(v)!r}"' for v in values[249]
    )  # quotes: the csv module from here
    lines.insert(100, "")  # a blank line is no row
    data = ("\n".join(lines) + "\n").encode()
    chunks = list(read_chunks(io.BytesIO(data), ".csv", spec, 64))
    got = np.concatenate([c["x"] for c in chunks])
    np.testing.assert_array_equal(got, values.astype(np.float32))
    # A bad field in a block the fast reader takes is reported by the exact one, by its line
    lines[150] = "1,,2"
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(FormatError, match="^line 151, input 'x': could not convert string"):
        list(read_chunks(io.BytesIO(data), ".csv", spec, 64))
    lines[150] = "1,2"
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(FormatError, match="^line 151 has 2 fields, the header has 3$"):
        list(read_chunks(io.BytesIO(data), ".csv", spec, 64))


def test_whole_numbers_read_as_integers_equal_the_float_reading() -> None:
    """Blocks of whole numbers take the integer reader; every value equals what the exact
    reader gives (float64, then the cast), sign of zero and 32-bit limits included."""
    from functions.batch.formats import _whole_numbers
    from functions.core.manifest import TensorSpec

    def exact(lines: list[str], datatype: str) -> np.ndarray:
        rows = [[float(v) for v in line.split(",")] for line in lines]
        return np.asarray(rows, dtype=np.float64).astype(
            {"FP32": np.float32, "FP64": np.float64}[datatype]
        )

    rng = np.random.default_rng(5)
    pixels = [",".join(str(v) for v in row) + "\n" for row in rng.integers(-300, 300, (50, 4))]
    whole = _whole_numbers(pixels, np.float32)
    assert whole is not None and whole.dtype == np.float32
    np.testing.assert_array_equal(whole, exact(pixels, "FP32"))
    big = ["16777217,2147483647,-2147483648,0\n"]  # not exact in float32: rounded once, alike
    np.testing.assert_array_equal(_whole_numbers(big, np.float32), exact(big, "FP32"))
    np.testing.assert_array_equal(_whole_numbers(big, np.float64), exact(big, "FP64"))
    # Not whole numbers, or not the same as floats: the float reader's to read
    assert _whole_numbers(["1,-0,2\n"], np.float32) is None  # -0.0 as a float
    assert _whole_numbers(["1,2,3\n", "1,2.5,3\n"], np.float32) is None
    assert _whole_numbers(["1,2,2147483648\n"], np.float32) is None
    assert _whole_numbers(["1,nan,3\n"], np.float32) is None
    assert _whole_numbers(["1,1e3,3\n"], np.float32) is None
    # Through the reader: a block of whole numbers, then one of decimals, then "-0"
    spec = (TensorSpec("x", "FP32", (-1, 4)),)
    lines = pixels[:20] + [line.replace(",", ".5,", 1) for line in pixels[20:40]]
    lines += ["-0,1,2,3\n"] + pixels[40:]
    chunks = list(
        read_chunks(io.BytesIO(("a,b,c,d\n" + "".join(lines)).encode()), ".csv", spec, 20)
    )
    got = np.concatenate([c["x"] for c in chunks])
    np.testing.assert_array_equal(got, exact(lines, "FP32"))
    assert np.signbit(got[40, 0])


def test_jsonl_lines_of_one_numeric_output_read_back_as_the_outputs(tmp_path: Path) -> None:
    """One numeric output is written as an array at once and split into lines: each line reads
    back as its row, values equal in the output's type; other outputs go row by row."""
    from functions.batch.formats import JsonlWriter

    cases = [
        np.random.default_rng(1).standard_normal((50, 3)).astype(np.float32),
        np.array([[np.nan, np.inf, -0.0]], dtype=np.float32),
        np.arange(7, dtype=np.int64) - 3,
        np.array([[True, False]]),
        np.zeros((2, 0), dtype=np.float32),
        np.array([[[1, 2]], [[3, 4]]], dtype=np.int32),  # rank 3: row by row
    ]
    for array in cases:
        path = tmp_path / "out.jsonl"
        writer = JsonlWriter(path)
        writer.write({"y": array})
        writer.write({"y": array})
        writer.close()
        lines = path.read_bytes().splitlines()
        assert len(lines) == 2 * len(array)
        back = np.asarray(
            [orjson.loads(line) for line in lines], dtype=np.float64 if array.size else None
        )
        expected = np.concatenate([array, array])
        finite = np.isfinite(expected)  # nan and inf are written as null, as JSON has neither
        np.testing.assert_array_equal(back.astype(array.dtype)[finite], expected[finite])
    writer = JsonlWriter(tmp_path / "two.jsonl")
    writer.write({"a": np.array([1, 2]), "b": np.array([[0.5], [1.5]], dtype=np.float32)})
    writer.close()
    rows = [orjson.loads(line) for line in (tmp_path / "two.jsonl").read_bytes().splitlines()]
    assert rows == [{"a": 1, "b": [0.5]}, {"a": 2, "b": [1.5]}]


def test_csv_edge_cases_read_the_same_whole_and_in_shards(store: Path, tmp_path: Path) -> None:
    from functions.core.manifest import TensorSpec

    # A [-1] input fed by its named column keeps its rank
    one_d = (TensorSpec("x", "FP32", (-1,)),)
    chunks = list(read_chunks(io.BytesIO(b"x\n1\n2\n3\n"), ".csv", one_d, 64))
    assert chunks[0]["x"].shape == (3,)
    matrix = (TensorSpec("x", "FP32", (-1, 2)),)
    # A value that overflows FP32 is refused; an infinity written as such is kept
    with pytest.raises(FormatError, match="out of range for FP32"):
        list(read_chunks(io.BytesIO(b"a,b\n1,2\n1e39,2\n"), ".csv", matrix, 64))
    inf = list(read_chunks(io.BytesIO(b"a,b\n1,2\ninf,2\n"), ".csv", matrix, 64))
    assert np.isinf(inf[0]["x"][1, 0])
    # A line of spaces is a row with one field: refused whole and in shards alike
    runner = runner_for(store, tmp_path, "digits")
    rows = csv_bytes(digits_rows(40)).split(b"\n")
    rows[21] = b"   "
    path = tmp_path / "spaces.csv"
    path.write_bytes(b"\n".join(rows))
    with path.open("rb") as stream, pytest.raises(FormatError, match="^line 22 has 1 fields"):
        list(read_chunks(stream, ".csv", runner.manifest.inputs, 8))
    with path.open("rb") as handle:
        plan = plan_shards(handle, path.stat().st_size, ".csv", runner.manifest.inputs, 600)
    handle, open_range = open_ranges(path)
    with handle:
        results = [
            run_shard(
                plan, s, runner=runner, open_range=open_range, out=tmp_path / "p", chunk_rows=8
            )  # type: ignore[arg-type]
            for s in plan.shards
        ]
    assert ": line 22 has 1 fields, the header has 64" in str(failure(plan, results))


def test_a_cut_inside_a_quoted_line_break_is_an_error_not_a_shifted_row(tmp_path: Path) -> None:
    from functions.core.manifest import TensorSpec

    text = (TensorSpec("text", "BYTES", (-1,)),)
    data = b'text\n"hello\nworld"\nsecond\n'
    whole = list(read_chunks(io.BytesIO(data), ".csv", text, 64))
    assert whole[0]["text"].tolist() == [b"hello\nworld", b"second"]
    path = tmp_path / "quoted.csv"
    path.write_bytes(data)
    with path.open("rb") as handle:
        plan = plan_shards(handle, len(data), ".csv", text, 4)
    handle, open_range = open_ranges(path)
    with handle, pytest.raises(FormatError, match="malformed"):
        for shard in plan.shards:
            list(read_shard(plan, shard, text, 64, open_range, Lines()))  # type: ignore[arg-type]


def test_empty_and_header_only_files_are_refused_with_workers(store: Path, tmp_path: Path) -> None:
    runner = runner_for(store, tmp_path, "digits")
    for name, data, message in (
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", csv_bytes(digits_rows(0)), "the file has no rows"),
        ("blank.jsonl", b"\n\n\n", "the file has no rows"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / f"{name}.out"
        with pytest.raises(FormatError, match=message):
            score_locally(
                path,
                runner=runner,
                store=str(store),
                workers=2,
                out=out,
                chunk_rows=8,
                shard_bytes=1024,
            )
        assert not out.exists()


def test_a_corrupt_npz_directory_is_a_format_error(store: Path, tmp_path: Path) -> None:
    import struct

    runner = runner_for(store, tmp_path, "multi")
    data = bytearray(npz_bytes(features=np.zeros((50, 4), np.float32), ids=np.arange(50)))
    entry = data.rfind(b"PK\x01\x02")  # the last member's central directory entry
    struct.pack_into("<L", data, entry + 42, len(data) - 10)  # its local header: near the end
    with pytest.raises(FormatError, match="broken zip header"):
        plan_shards(io.BytesIO(bytes(data)), len(data), ".npz", runner.manifest.inputs, 64)
