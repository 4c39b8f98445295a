"""Parquet batch files: columns into inputs, predictions as columns, whole and in shards."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from functions.batch.fanout import score_locally
from functions.batch.formats import FormatError, read_chunks
from functions.batch.job import run_job
from functions.batch.shards import plan_shards
from tests.batch.test_shards import digits_rows, runner_for, shards_read, store, whole_read
from tests.conftest import raw_outputs
from tests.model_build.test_cli import maas

__all__ = ["store"]  # the module-scoped store of digits and multi


def features_table(rows: np.ndarray) -> pa.Table:
    """One numeric column per feature, as a data team's export has them."""
    return pa.table({f"p{i}": rows[:, i] for i in range(rows.shape[1])})


def write(table: pa.Table, path: Path, row_group_size: int = 100) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_a_parquet_file_scores_to_parquet_equal_to_raw_onnxruntime(
    store: Path, tmp_path: Path, artifacts: dict[str, bytes]
) -> None:
    # Given 700 rows of pixels as 64 columns, in row groups of 100
    rows = digits_rows(700)
    path = write(features_table(rows), tmp_path / "in.parquet")
    runner = runner_for(store, tmp_path, "digits")
    # When the batch job scores it
    with path.open("rb") as stream:
        stats = run_job(
            stream, suffix=".parquet", runner=runner, out=tmp_path / "out.parquet", chunk_rows=64
        )
    # Then the predictions are columns of a .parquet file equal to raw onnxruntime's
    assert stats.rows == 700 and stats.output_format == ".parquet"
    table = pq.read_table(tmp_path / "out.parquet")
    expected = raw_outputs(artifacts["digits"], {"pixels": rows})
    assert table.column("label").to_pylist() == expected["label"].tolist()
    probabilities = np.asarray(table.column("probabilities").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=1e-6, rtol=0)


def test_columns_feed_inputs_by_name_lists_and_features(store: Path, tmp_path: Path) -> None:
    runner = runner_for(store, tmp_path, "multi")
    features = np.arange(40, dtype=np.float32).reshape(10, 4)
    ids = np.arange(10, dtype=np.int64)
    # A fixed-size list column and a scalar column, named after the inputs
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), 4)
    path = write(
        pa.table({"ids": ids, "features": fixed, "note": ["x"] * 10}), tmp_path / "a.parquet"
    )
    got = whole_read(runner, path)
    np.testing.assert_array_equal(got["features"], features)
    np.testing.assert_array_equal(got["ids"], ids)
    # A variable-length list column whose rows are all as long reads the same
    lists = pa.array(features.tolist(), type=pa.list_(pa.float64()))
    path = write(pa.table({"features": lists, "ids": ids}), tmp_path / "b.parquet")
    np.testing.assert_array_equal(whole_read(runner, path)["features"], features)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            pa.table(
                {
                    "features": pa.array([[1.0] * 4, [1.0] * 3], type=pa.list_(pa.float32())),
                    "ids": pa.array([1, 2]),
                }
            ),
            "rows 0-1 of the .parquet file: input 'features' has lists of 4 and 3 values",
        ),
        (
            pa.table(
                {
                    "features": pa.array([[1.0] * 4, [1.0] * 4], type=pa.list_(pa.float32())),
                    "ids": pa.array([1, None]),
                }
            ),
            "row 1 of the .parquet file: column 'ids' is null",
        ),
        (
            pa.table({"a": [1.0], "b": ["x"]}),
            "the .parquet columns ['a', 'b'] do not fit the model's inputs",
        ),
    ],
)
def test_a_parquet_file_that_does_not_fit_says_why(
    store: Path, tmp_path: Path, table: pa.Table, message: str
) -> None:
    runner = runner_for(store, tmp_path, "multi")
    path = write(table, tmp_path / "bad.parquet")
    with path.open("rb") as stream, pytest.raises(FormatError) as caught:
        list(read_chunks(stream, ".parquet", runner.manifest.inputs, 64))
    assert str(caught.value).startswith(message), caught.value


def test_a_truncated_parquet_file_is_refused(store: Path, tmp_path: Path) -> None:
    runner = runner_for(store, tmp_path, "digits")
    data = write(features_table(digits_rows(50)), tmp_path / "in.parquet").read_bytes()
    with pytest.raises(FormatError, match=r"^the \.parquet file cannot be read: "):
        list(read_chunks(io.BytesIO(data[:-100]), ".parquet", runner.manifest.inputs, 64))


def test_the_shards_of_a_parquet_file_are_its_row_groups_in_order(
    store: Path, tmp_path: Path
) -> None:
    # Given 1,000 rows in row groups of 100 (~20 KB each), cut into shards of ~40 KB
    rows = digits_rows(1000)
    path = write(features_table(rows), tmp_path / "in.parquet")
    runner = runner_for(store, tmp_path, "digits")
    with path.open("rb") as handle:
        plan = plan_shards(handle, path.stat().st_size, ".parquet", runner.manifest.inputs, 40000)
    # Then each shard is whole row groups, the shards cover every row once, and read through
    # two ranged reads each (the footer's end, the shard's bytes) they give the rows in order
    assert 2 < len(plan.shards) < 10 and plan.rows == 1000
    spans = [s.rows for s in plan.shards]
    assert spans[0][0] == 0 and spans[-1][1] == 1000
    assert all(a[1] == b[0] and a[1] % 100 == 0 for a, b in zip(spans, spans[1:], strict=False))
    np.testing.assert_array_equal(shards_read(plan, runner, path)["pixels"], rows)
    assert plan.footer < path.stat().st_size - 8


def test_maas_batch_parquet_with_workers_equals_it_whole(store: Path, tmp_path: Path) -> None:
    rows = digits_rows(900)
    path = write(features_table(rows), tmp_path / "in.parquet")
    env = {"MAAS_CACHE_DIR": str(tmp_path / "c"), "MAAS_BATCH_SHARD_BYTES": "30000"}
    args = ["batch", str(path), "--model", "digits", "--store", str(store)]
    sharded = maas(*args, "--workers", "2", "--out", str(tmp_path / "s.parquet"), env=env)
    assert sharded.returncode == 0, sharded.stderr
    summary = orjson.loads(sharded.stdout)
    assert summary["rows"] == 900 and summary["shards"] > 2 and summary["format"] == "parquet"
    whole = maas(*args, "--out", str(tmp_path / "w.parquet"), env=env)
    assert whole.returncode == 0, whole.stderr
    a, b = pq.read_table(tmp_path / "s.parquet"), pq.read_table(tmp_path / "w.parquet")
    assert a.schema == b.schema and a.column("label").equals(b.column("label"))
    np.testing.assert_allclose(
        np.asarray(a.column("probabilities").to_pylist()),
        np.asarray(b.column("probabilities").to_pylist()),
        atol=1e-6,
        rtol=0,
    )


def test_outputs_of_rank_three_keep_their_shape_in_the_metadata(tmp_path: Path) -> None:
    from functions.batch.parquet import ParquetWriter

    writer = ParquetWriter(tmp_path / "o.parquet")
    cube = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    writer.write({"cube": cube, "text": np.array(["a", "b"], dtype=object)})
    writer.write({"cube": cube + 1, "text": np.array(["c", "d"], dtype=object)})
    writer.close()
    table = pq.read_table(tmp_path / "o.parquet")
    shape = orjson.loads(table.schema.metadata[b"maas.shape.cube"])
    got = np.asarray(table.column("cube").to_pylist()).reshape(-1, *shape)
    np.testing.assert_array_equal(got, np.concatenate([cube, cube + 1]))
    assert table.column("text").to_pylist() == ["a", "b", "c", "d"]


def test_score_locally_reads_parquet_row_groups_in_processes(store: Path, tmp_path: Path) -> None:
    rows = digits_rows(400)
    path = write(features_table(rows), tmp_path / "in.parquet")
    runner = runner_for(store, tmp_path, "digits")
    plan, results, count = score_locally(
        path,
        runner=runner,
        store=str(store),
        workers=2,
        out=tmp_path / "out.parquet",
        chunk_rows=50,
        shard_bytes=20000,
    )
    assert count == 400 and len(plan.shards) >= 2
    assert [r["rows"] for r in results] == [b - a for a, b in (s.rows for s in plan.shards)]
