"""Crashes, full disks and colliding paths: nothing half-written looks complete, nothing is lost."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from dicom_deid.archives import Limits
from dicom_deid.example_tree import build_example_tree
from dicom_deid.job import KILLED
from dicom_deid.paths import session_output_dir
from dicom_deid.records import Failure, SessionStatus, read_record
from dicom_deid.stages.unpack import list_sources
from helpers import DEFAULT_CONFIG, REPO, checksums, output_files, run_snakemake

S1 = "EPL31_LHS_0001"


def _start(workdir: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config" / "config.yaml"), "--directory", str(workdir), "--cores", "2",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for(condition, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def _build_slow_tree(root: Path):
    """The example tree plus 300 more files in one session, so its jobs last long enough to be killed."""
    tree = build_example_tree(root)
    session = tree.session_dir(S1, f"{S1}_01")
    (session / "bulk").mkdir()
    for number in range(300):
        shutil.copy(session / "anat" / "t1" / "IM_0001.dcm", session / "bulk" / f"IM{number:04d}.dcm")
    tree.expected_dicoms[(S1, f"{S1}_01")] += [f"bulk/IM{number:04d}.dcm" for number in range(300)]
    return tree


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean run, and its key, to compare crashed-then-resumed runs against."""
    workdir = tmp_path_factory.mktemp("reference")
    tree = _build_slow_tree(workdir / "input")
    run_snakemake(workdir)
    return workdir, tree


def _same_output_as(reference_dir: Path, workdir: Path, tree) -> None:
    for subject, session in tree.expected_dicoms:
        ses = session.removeprefix(subject + "_")
        ours, theirs = (
            session_output_dir(workdir / "output", subject, ses),
            session_output_dir(reference_dir / "output", subject, ses),
        )
        assert output_files(ours) == sorted(tree.expected_dicoms[(subject, session)])
        assert checksums(ours) == checksums(theirs)


def _fresh_copy(reference, tmp_path) -> tuple[Path, object]:
    reference_dir, _ = reference
    tree = _build_slow_tree(tmp_path / "input")
    (tmp_path / "keys").mkdir()
    shutil.copy2(reference_dir / "keys" / "deid.key", tmp_path / "keys" / "deid.key")
    return tmp_path, tree


def test_kill_9_of_snakemake_then_rerun_gives_complete_correct_output(reference, tmp_path):
    workdir, tree = _fresh_copy(reference, tmp_path)
    process = _start(workdir)
    # Kill the whole process group while a session is half way: its scratch output exists.
    _wait_for(lambda: any((workdir / "work").glob("*/*/anonymized")))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for (subject, session), expected in tree.expected_dicoms.items():
        folder = session_output_dir(workdir / "output", subject, session.removeprefix(subject + "_"))
        assert not folder.exists() or output_files(folder) == sorted(expected)  # complete or absent

    run_snakemake(workdir, "--unlock")
    run_snakemake(workdir)
    _same_output_as(reference[0], workdir, tree)


def _is_job_in(process: psutil.Process, workdir: Path) -> bool:
    cmdline = " ".join(process.info["cmdline"] or [])
    return "anonymize_session.py" in cmdline and "python" in cmdline and process.info["cwd"] == str(workdir)


def test_kill_9_of_one_job_fails_that_session_only_and_rerun_completes(reference, tmp_path):
    workdir, tree = _fresh_copy(reference, tmp_path)
    process = _start(workdir)
    victims: list[int] = []

    def anonymize_job_running():
        # Only this test's job (its working folder is workdir): other workflows may run on the same machine.
        victims[:] = [p.pid for p in psutil.process_iter(["cmdline", "cwd"]) if _is_job_in(p, workdir)]
        return bool(victims) and any((workdir / "work").glob(f"{S1}/{S1}_01/anonymized/files/bulk/*"))

    _wait_for(anonymize_job_running)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=120) != 0
    # No handler of the job ran: the status it wrote as it started tells the reports why the session failed.
    status = read_record(workdir / "work" / "status" / S1 / f"{S1}_01.json", SessionStatus)
    assert status.stage == "anonymize_session"
    assert status.failures == [Failure("", f"{KILLED}, see the log logs/anonymize_session/{S1}/{S1}_01.log")]
    with open(workdir / "output" / "reports" / "summary.tsv") as summary:
        states = {row["session"]: row["state"] for row in csv.DictReader(summary, delimiter="\t")}
    assert states[f"{S1}_01"] == "failed"
    assert "killed from outside" in (workdir / "output" / "reports" / "report.html").read_text()

    run_snakemake(workdir)
    _same_output_as(reference[0], workdir, tree)
    assert not (workdir / "work" / "status" / S1 / f"{S1}_01.json").exists()


def test_a_worker_whose_job_process_was_killed_alone_exits(tmp_path):
    # Killed alone (the OOM killer picks one process), the job leaves its workers waiting for work on a pipe
    # they hold open themselves: without a watch on their parent they would live on, idle, forever.
    job = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_JOB], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert job.stdout.readline().strip() == "ready"
    workers = [p.pid for p in psutil.Process(job.pid).children()]
    assert len(workers) == 2
    job.stdin.write("go\n")
    job.stdin.flush()
    job.wait(timeout=60)

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    try:
        _wait_for(lambda: all(gone(pid) for pid in workers), timeout=10)
    finally:
        for pid in workers:  # not left running when the check fails
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# A job process with the anonymize stage's pool of 2 workers, idle, that ends as SIGKILL would end it: no clean-up.
ORPHANING_JOB = """
import os, sys
from dicom_deid.records import default_policy
from dicom_deid.stages.anonymize import worker_pool
pool = worker_pool(default_policy("k" * 32), False, 2)
list(pool.map(abs, range(8)))
print("ready", flush=True)
sys.stdin.readline()
os._exit(0)
"""


def test_no_half_written_session_is_ever_visible(reference, tmp_path):
    # Sample the output folder throughout a run: a session folder, once visible, already holds everything.
    workdir, tree = _fresh_copy(reference, tmp_path)
    process = _start(workdir)
    seen_incomplete = []
    while process.poll() is None:
        for (subject, session), expected in tree.expected_dicoms.items():
            folder = session_output_dir(workdir / "output", subject, session.removeprefix(subject + "_"))
            if folder.exists():
                present = output_files(folder)
                if present and present != sorted(expected):
                    seen_incomplete.append((session, len(present)))
        time.sleep(0.005)
    assert process.returncode == 0 and not seen_incomplete


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_full_disk_fails_clearly(tmp_path):
    build_example_tree(tmp_path / "input")
    scratch = tmp_path / "small"
    scratch.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(scratch)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = run_snakemake(tmp_path, "--config", f"work_dir={scratch}/work", check=False)
    finally:
        subprocess.run(["umount", str(scratch)], check=True)
    assert result.returncode != 0
    assert "disk full" in result.stdout
    assert not list((tmp_path / "output").glob("*/imaging/*"))


def test_two_files_mapping_to_one_output_path_are_an_error(tmp_path):
    session = build_example_tree(tmp_path / "input").session_dir(S1, f"{S1}_01")
    # dwi_scan/dwi_scan.tar.gz unpacks to dwi_scan/dwi_scan/series1/IM1.dcm; a loose file there collides.
    clash = session / "dwi_scan" / "dwi_scan" / "series1" / "IM1.dcm"
    clash.parent.mkdir(parents=True)
    shutil.copy(session / "anat" / "t1" / "IM_0001.dcm", clash)
    staged = list_sources(session, tmp_path / "unpacked", Limits.from_config(DEFAULT_CONFIG["archives"]))
    assert staged.problems == [
        "dwi_scan/dwi_scan/series1/IM1.dcm: both file dwi_scan/dwi_scan/series1/IM1.dcm and "
        "member series1/IM1.dcm of dwi_scan/dwi_scan.tar.gz map to this output path"
    ]


@pytest.mark.parametrize("name", ["empty.zip", "empty.tar.gz"])
def test_an_archive_that_holds_no_file_is_a_bad_input_not_a_silence(tmp_path, name):
    # An export that failed leaves an empty archive; it had no outcome at all, in no report.
    session = build_example_tree(tmp_path / "input").session_dir(S1, f"{S1}_01")
    empty = session / name
    if name.endswith(".zip"):
        zipfile.ZipFile(empty, "w").close()
    else:
        with tarfile.open(empty, "w:gz") as tar:
            folder = tarfile.TarInfo("series1")  # folders only, no file
            folder.type = tarfile.DIRTYPE
            tar.addfile(folder)
    staged = list_sources(session, tmp_path / "unpacked", Limits.from_config(DEFAULT_CONFIG["archives"]))
    assert staged.problems == [f"{name}: archive holds no file (an export that failed?); remove it if it should"]
    assert len(staged.files) > 1  # the session's other files are listed as before


def test_archive_that_appears_after_discovery_is_named_not_skipped(tmp_path):
    # A session discovered without archives has no unpack stage; an archive copied in while the workflow
    # runs must fail the session by name (a rerun then unpacks it), not be left out silently.
    session = build_example_tree(tmp_path / "input").session_dir(S1, f"{S1}_01")
    staged = list_sources(session)
    assert staged.problems == [
        f"{archive}: archive added while the workflow ran; run it again to unpack it"
        for archive in ("dwi_scan/dwi_scan.tar.gz", "exports/scans.zip")
    ]
    assert not any("dwi_scan.tar.gz" in source for _, source in staged.files)
