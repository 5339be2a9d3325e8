"""`make bench BENCH_ARGS="--profile-files N"` runs the workflow's stages in-process, outside Snakemake: it has to
keep up with their signatures (it once built a Policy with arguments Policy no longer takes, and only failed
when someone needed a profile)."""

from pathlib import Path

from pydicom.data import get_testdata_file

from bench.profiling import CHECK, WORKER_STEPS, cost_table, worker_steps
from bench.trees import build_small
from dicom_deid.paths import session_input_dir


def test_cost_table_runs_each_stage_over_a_session_and_its_check_finds_nothing(tmp_path, capsys):
    session = session_input_dir(build_small(tmp_path / "small", 3, 1).root, "BENCH01", "01")
    files = sorted(session.rglob("*.dcm"))

    table = cost_table("MR_small copies", session, files, tmp_path)

    assert f"| {CHECK} |" in table
    assert "session check failures" not in capsys.readouterr().out


def test_worker_steps_times_every_step_the_worker_calls(tmp_path):
    files = [Path(get_testdata_file(name)) for name in ("MR_small.dcm", "CT_small.dcm", "JPEG2000.dcm")]

    table = worker_steps(files, tmp_path, rounds=1)

    for description in WORKER_STEPS.values():
        assert f"| {description} |" in table
    assert "| dicognito's handlers (fast path) |" in table
    assert "| the worker without its check (the two check steps below do nothing) |" in table
