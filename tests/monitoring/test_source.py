"""churn.monitoring.source: the pyarrow reader gives what the log's own reader gives.

The reference is `compact(inference_log.read_log(...))`, the rows as every other reader of
the log sees them; the files include what other writers may produce (real nulls in text
columns, microsecond and naive timestamps, several files and row groups per partition).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.deployment import inference_log
from churn.monitoring import source

from .conftest import DAY0


def reference(root, day, dataset, labels, now):
    frame = inference_log.read_log(root, start=day, end=day, dataset=dataset)
    frame = frame.loc[~(frame[source.SCORED_AT] > now)]
    return source.compact(frame, dataset, labels)


def test_partition_rows_equal_the_log_readers(world):
    dataset = world.dataset
    raws = [world.log_day(0, 150), world.log_day(0, 120, seed=5, with_label=True, hour=20)]
    world.label(raws[0].iloc[:40])
    root = world.params.paths.inference_log
    # A file another writer made: nulls in a category and in a number, naive microsecond
    # times, two row groups with their own dictionaries.
    table = pq.read_table(sorted((root / "date=2026-11-02").glob("part-*.parquet"))[0])
    frame = table.to_pandas()
    frame.loc[frame.index[:5], "Contract"] = None
    frame.loc[frame.index[5:8], "tenure"] = np.nan
    frame[source.SCORED_AT] = (DAY0 + timedelta(hours=23)).replace(tzinfo=None)
    foreign = pa.Table.from_pandas(frame, preserve_index=False)
    foreign = foreign.set_column(
        foreign.schema.get_field_index(source.SCORED_AT), source.SCORED_AT,
        foreign.column(source.SCORED_AT).cast(pa.timestamp("us")),
    )
    pq.write_table(foreign, root / "date=2026-11-02" / "part-29991231T000000000000Z-foreign.parquet", row_group_size=64)
    day = DAY0.date()
    now = pd.Timestamp(DAY0 + timedelta(hours=21))  # the foreign file's rows are in the future
    labels = source.read_labels(root, dataset)
    got = source.read_partition(root, day, dataset, labels, now)
    want = reference(root, day, dataset, labels, now)
    assert got.future_rows == table.num_rows == 150
    pd.testing.assert_frame_equal(got.frame, want)
    for column in dataset.categorical:  # the same levels, in the same (sorted) order
        assert list(got.frame[column].cat.categories) == list(want[column].cat.categories)
    assert got.frame[source.LABEL].notna().sum() == 40 + 120
    later = pd.Timestamp(DAY0 + timedelta(days=1))
    everything = source.read_partition(root, day, dataset, labels, later)
    assert "None" in everything.frame["Contract"].cat.categories  # a null category reads as the level "None"
    pd.testing.assert_frame_equal(everything.frame, reference(root, day, dataset, labels, later))


def test_ids_hash_the_same_from_arrow_and_from_python():
    ids = ["a", "7590-VHVEG", "", "ü", None]
    arrow = pa.chunked_array([pa.array(ids[:2]), pa.array(ids[2:])])
    np.testing.assert_array_equal(source.id_keys(arrow), source.id_keys(pd.Series(ids, dtype=object)))
    np.testing.assert_array_equal(source.id_keys(arrow.dictionary_encode()), source.id_keys(np.array(ids, dtype=object)))
