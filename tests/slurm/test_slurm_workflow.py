"""The whole workflow on Slurm (`--profile profiles/slurm`), checked exactly as the local run is.

Needs a Slurm cluster: run `make test-slurm` (tests/slurm/run.sh), which starts the single-node test cluster
of tests/slurm/cluster.sh when none answers, sets DEID_SLURM_TESTS=1 and stops what it started. Without that
variable (e.g. in `make test`) the module is skipped.

- Every check of tests/test_workflow.py that takes only the finished `run` is imported and runs against the
  Slurm-made output, once per mode: one Slurm job per session, and `--group-components session=3`.
- The Slurm output is byte-identical to a local run with the same key.
- A session that fails on Slurm names the bad file, the reason and its logs in Snakemake's output; a rerun
  submits only the failed and the new session.
- Time and Slurm submissions of each run are printed at the end (see conftest.py).
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if os.environ.get("DEID_SLURM_TESTS") != "1":
    pytest.skip("needs the Slurm test cluster: run `make test-slurm` (tests/slurm/run.sh)", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers and test_workflow

import test_workflow as local

from dicom_deid.example_tree import build_example_tree
from dicom_deid.paths import session_output_dir
from helpers import REPO, checksums, files_below, output_files, planted_values, sessions_run

PROFILE = REPO / "profiles" / "slurm"
RUN_TIMEOUT = int(os.environ.get("DEID_SLURM_RUN_TIMEOUT", "300"))  # seconds per snakemake run: a hang fails
S1, S2, S3 = "EPL31_LHS_0001", "EPL31_LHS_0002", "EPL31_LHS_0003"
SESSION_GROUP = "/group_session_"  # in the Slurm log path of a job of group "session"

# Snakemake's lines (snakemake 9.27.1, snakemake-executor-plugin-slurm 2.8.0).
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$", re.M)
RUN_ID = re.compile(r"^SLURM run ID: (\S+)$", re.M)
FAILED_GROUP = re.compile(r"Error in group session\s*\n\s*log: (\S+?) \(check log file")


# --- running Snakemake on Slurm ------------------------------------------------------------------------------


@dataclass
class SlurmResult:
    returncode: int
    log: str  # Snakemake's stdout and stderr, in order
    seconds: float
    run_id: str
    submitted: dict[str, str]  # Slurm job id -> its Slurm log path, as Snakemake announced them
    states: dict[str, str] = field(default_factory=dict)  # Slurm job id -> state, from squeue

    @property
    def session_jobs(self) -> list[str]:
        return [job for job, log in self.submitted.items() if SESSION_GROUP in log]


def squeue_states(run_id: str) -> dict[str, str]:
    """State of every Slurm job of one Snakemake run (the plugin names the jobs after the run id).

    Finished jobs stay visible for MinJobAge (300 s on the test cluster), so ask right after the run.
    """
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "--name", run_id, "-o", "%i %T"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines() if line.strip())


def run_slurm(workdir: Path, *args: str, check: bool = True) -> SlurmResult:
    """Run the workflow with --profile profiles/slurm, like tests/helpers.py's run_snakemake runs it locally.

    No --cores here: the profile's `cores` (the node size) is part of what is tested. The console output goes
    to <workdir>.<n>.console.log beside the work dir, so tests/slurm/run.sh can cancel the Slurm jobs of a
    run that was killed.
    """
    n = len(list(workdir.parent.glob(f"{workdir.name}.*.console.log")))
    console = workdir.parent / f"{workdir.name}.{n}.console.log"
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config" / "config.yaml"),
        "--directory", str(workdir),
        "--profile", str(PROFILE),
        *args,
    ]  # fmt: skip
    start = time.monotonic()
    with open(console, "w") as out:
        # Same process group as pytest: run.sh's `timeout` reaches Snakemake too.
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            returncode = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL: Snakemake ignores SIGTERM while it waits for Slurm jobs
            process.wait()
            returncode = None
    seconds = time.monotonic() - start
    log = console.read_text()
    run_id = match.group(1) if (match := RUN_ID.search(log)) else ""
    if returncode is None:
        if run_id:
            subprocess.run(["scancel", "--name", run_id], timeout=30, check=False)
        raise AssertionError(f"snakemake hung: killed after {RUN_TIMEOUT} s, console log {console}:\n{log[-3000:]}")
    submitted = {job: path for job, path in SUBMITTED.findall(log)}
    result = SlurmResult(returncode, log, seconds, run_id, submitted, squeue_states(run_id) if run_id else {})
    if check and returncode != 0:
        raise AssertionError(f"snakemake failed ({returncode}), console log {console}:\n{log}")
    return result


def assert_all_ran_on_slurm(result: SlurmResult, failed: set[str] = frozenset()) -> None:
    """Every job Snakemake announced is a Slurm job of this run, and ended as expected."""
    assert result.run_id, "no 'SLURM run ID' line: did the Slurm executor run?"
    assert result.submitted, "no job was submitted to Slurm"
    assert set(result.states) == set(result.submitted), (result.states, result.submitted)
    expected = {job: "FAILED" if job in failed else "COMPLETED" for job in result.submitted}
    assert result.states == expected


# --- the example tree, on Slurm, in both modes -----------------------------------------------------------------

MODES = {
    "per-session": (),  # one Slurm job per session (group "session" of rules/*.smk)
    "group-components": ("--group-components", "session=3"),  # three sessions per Slurm job
}
N_SESSIONS = 3  # sessions of the example tree
EXPECTED_SESSION_JOBS = {"per-session": N_SESSIONS, "group-components": 1}


@dataclass
class SlurmRun(local.Run):
    mode: str
    slurm: SlurmResult


@pytest.fixture(scope="module", params=list(MODES))
def run(request, tmp_path_factory, record) -> SlurmRun:
    mode = request.param
    workdir = tmp_path_factory.mktemp(mode)
    tree = build_example_tree(workdir / "input")
    before = checksums(tree.root)
    result = run_slurm(workdir, *MODES[mode])
    record(
        f"{mode:17} example tree ({N_SESSIONS} sessions): {result.seconds:5.1f} s, "
        f"{len(result.submitted)} Slurm jobs ({len(result.session_jobs)} session group job(s) "
        f"+ {len(result.submitted) - len(result.session_jobs)} other)"
    )
    return SlurmRun(workdir, tree, before, result.log, mode, result)


def _checks_of_a_finished_run():
    """tests/test_workflow.py's tests that take only the finished `run`: the checks of the local run."""
    for name, function in vars(local).items():
        if name.startswith("test_") and inspect.isfunction(function):
            if list(inspect.signature(function).parameters) == ["run"]:
                yield name, function


LOCAL_CHECKS = dict(_checks_of_a_finished_run())
assert len(LOCAL_CHECKS) >= 8, f"found only {sorted(LOCAL_CHECKS)} in tests/test_workflow.py"
# Collected here, they get this module's `run` fixture: the very same assertions, on the Slurm-made output.
globals().update(LOCAL_CHECKS)


def test_each_session_group_is_one_slurm_job_and_all_completed(run):
    assert_all_ran_on_slurm(run.slurm)
    assert len(run.slurm.session_jobs) == EXPECTED_SESSION_JOBS[run.mode]
    assert sessions_run(run.log) == {session for _, session in run.tree.expected_dicoms}
    # Rules outside the group go one job each (dataset_summary, html_report unless they become localrules).
    others = [log for log in run.slurm.submitted.values() if SESSION_GROUP not in log]
    assert all("/rule_" in log for log in others), others


def test_output_is_byte_identical_to_a_local_run_with_the_same_key(run, tmp_path, record):
    (tmp_path / "keys").mkdir()
    shutil.copy2(run.workdir / "keys" / "deid.key", tmp_path / "keys" / "deid.key")
    start = time.monotonic()
    again = local._run_example(tmp_path)  # tests/helpers.py's run_snakemake: local, --cores 2
    record(f"{'local':17} example tree, same key: {time.monotonic() - start:5.1f} s (for comparison)")
    for subject, session in run.tree.expected_dicoms:
        assert checksums(again.session_out(subject, session)) == checksums(run.session_out(subject, session))
        report = Path("reports") / subject / f"{session}.json"
        assert (again.output / report).read_bytes() == (run.output / report).read_bytes()
    for name in ("summary.tsv", "report.html"):
        assert (again.output / "reports" / name).read_bytes() == (run.output / "reports" / name).read_bytes()


def test_rerun_submits_nothing(run, record):
    result = run_slurm(run.workdir, *MODES[run.mode])
    assert "Nothing to be done" in result.log
    assert result.submitted == {}
    record(f"{run.mode:17} rerun, nothing to do:        {result.seconds:5.1f} s, 0 Slurm jobs")


def test_no_planted_identifier_or_key_in_slurm_logs(run):
    _assert_no_leak_in_slurm_logs(run.workdir, run.tree)


def _assert_no_leak_in_slurm_logs(workdir: Path, tree) -> None:
    planted = planted_values(tree)
    key = (workdir / "keys" / "deid.key").read_bytes().strip()
    for path in files_below(workdir / ".snakemake" / "slurm_logs"):
        content = path.read_bytes()
        assert not [value for value in planted if value in content], path
        assert key not in content, path


# --- a session that fails on Slurm, and the rerun --------------------------------------------------------------


def test_failed_session_shows_log_and_reason_and_rerun_submits_only_failed_and_new(tmp_path, record):
    tree = build_example_tree(tmp_path / "input")
    bad = tree.session_dir(S1, f"{S1}_02")
    good = bad / "anat" / "t2" / "IM_0001.dcm"
    (bad / "anat" / "t2" / "IM_0002.dcm").write_bytes(good.read_bytes()[:-1000])  # truncated pixel data
    before = checksums(tree.root)

    failed = run_slurm(tmp_path, check=False)
    record(
        f"{'per-session':17} one bad session:             {failed.seconds:5.1f} s, "
        f"{len(failed.submitted)} Slurm jobs, 1 failed"
    )
    assert failed.returncode != 0
    log = failed.log
    # The reason, naming the bad file.
    assert f"session {S1}_02: 1 bad file(s)" in log
    assert "anat/t2/IM_0002.dcm: pixel data is truncated" in log
    # Where to look: the Slurm log of the failed group job, and the session's rule log.
    match = FAILED_GROUP.search(log)
    assert match, "no 'Error in group session' with a log path in Snakemake's output"
    slurm_log = Path(match.group(1))
    assert slurm_log.is_relative_to(tmp_path / ".snakemake" / "slurm_logs"), slurm_log
    assert "pixel data is truncated" in slurm_log.read_text()
    rule_log = f"logs/anonymize_session/{S1}/{S1}_02.log"
    assert f"log: {rule_log} (check log file(s) for error details)" in log
    assert "anat/t2/IM_0002.dcm: pixel data is truncated" in (tmp_path / rule_log).read_text()
    # That Slurm job, and only it, failed; the other sessions' jobs completed and their output is complete.
    failed_job = slurm_log.stem
    assert failed.submitted[failed_job] == str(slurm_log)
    assert_all_ran_on_slurm(failed, failed={failed_job})
    assert len(failed.session_jobs) == N_SESSIONS
    for subject, session in ((S1, f"{S1}_01"), (S2, f"{S2}_01")):
        out = session_output_dir(tmp_path / "output", subject, session.rsplit("_", 1)[1])
        assert output_files(out) == sorted(tree.expected_dicoms[(subject, session)])
    assert not session_output_dir(tmp_path / "output", S1, "02").exists()
    assert checksums(tree.root) == before
    _assert_no_leak_in_slurm_logs(tmp_path, tree)

    # Fix the file and add a subject: only the failed and the new session are submitted.
    shutil.copy(good, bad / "anat" / "t2" / "IM_0002.dcm")
    shutil.copytree(tree.session_dir(S2, f"{S2}_01"), tree.root / S3 / "imaging" / f"{S3}_01")
    existing = {p: p.stat().st_mtime_ns for p in files_below(tmp_path / "output") if "reports" not in p.parts}
    rerun = run_slurm(tmp_path)
    record(
        f"{'per-session':17} rerun, fixed + new session:  {rerun.seconds:5.1f} s, "
        f"{len(rerun.submitted)} Slurm jobs ({len(rerun.session_jobs)} session group job(s))"
    )
    assert_all_ran_on_slurm(rerun)
    assert sessions_run(rerun.log) == {f"{S1}_02", f"{S3}_01"}
    assert len(rerun.session_jobs) == 2
    assert {p: p.stat().st_mtime_ns for p in existing} == existing
    assert output_files(session_output_dir(tmp_path / "output", S1, "02")) == sorted(
        tree.expected_dicoms[(S1, f"{S1}_02")]
    )
    assert output_files(session_output_dir(tmp_path / "output", S3, "01")) == sorted(
        tree.expected_dicoms[(S2, f"{S2}_01")]
    )
