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


def test_pairs_report_the_median_ratio_and_every_pair(monkeypatch, tmp_path):
    from benchmarks.project import Project

    from benchmarks import __main__ as bench
    from benchmarks import measure

    walls = iter([40.0, 52.0, 45.0, 50.0, 42.0, 60.0])  # bare, repro; three times
    commands = []

    def run(command, **kwargs):
        commands.append(command)
        return measure.Measured(next(walls), 1.0, 10.0, "", "")

    monkeypatch.setattr(measure, "run", run)
    (tmp_path / "params.yaml").write_text("paths: {raw: data/raw.csv}\n")
    row = bench._paired(Project(tmp_path, {}), 1000, 3)
    assert row.vs_bare == 52.0 / 40.0 and row.wall_s == 52.0  # ratios 1.30, 1.11, 1.43: the middle one
    assert row.note == "median pair; each pair dvc repro / bare: 52.0 / 40.0 s = 1.30, 50.0 / 45.0 s = 1.11, 60.0 / 42.0 s = 1.43"
    assert [c[:3] for c in commands[1::2]] == [["dvc", "repro", "--force"]] * 3
