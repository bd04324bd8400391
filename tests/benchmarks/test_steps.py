"""benchmarks.__main__: how a short step's repeated runs are reported."""

from __future__ import annotations


def test_short_steps_report_the_median_run_and_list_them_all(monkeypatch, tmp_path):
    from benchmarks.project import Project

    from benchmarks import __main__ as bench
    from benchmarks import measure

    walls = iter([3.0, 1.0, 2.0, 5.0])
    monkeypatch.setattr(measure, "run", lambda command, **kwargs: measure.Measured(next(walls), 0.5, 10.0, "", ""))
    checked = []
    median, note = bench._median_run(["dvc", "repro"], Project(tmp_path, {}), 3, checked.append)
    assert median.wall_s == 2.0 and len(checked) == 3
    assert note == "median of 3 runs: 3.00, 1.00, 2.00 s"
    single, note = bench._median_run(["dvc", "repro"], Project(tmp_path, {}), 1)
    assert single.wall_s == 5.0 and note == ""
