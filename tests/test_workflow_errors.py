"""How the workflow reacts to layouts and files it cannot take as they are."""

from __future__ import annotations

import json
import os
import shutil

import pydicom
from helpers import checksums, files_below, output_files, run_snakemake, sessions_run

from dicom_deid.example_tree import build_example_tree
from dicom_deid.paths import session_output_dir

S1, S2 = "EPL31_LHS_0001", "EPL31_LHS_0002"


def test_misnamed_session_folder_stops_even_a_dry_run(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    (tree.root / S1 / "imaging" / "session_03").mkdir()
    (tree.root / S1 / "imaging" / "session_03" / "IM1").write_bytes(b"x")
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "session_03" in result.stdout and "must be 'EPL31_LHS_0001_<SES>'" in result.stdout
    assert not (tmp_path / "output").exists()


def test_things_left_behind_are_reported_before_any_job(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    (tree.root / S1 / "imaging" / "stray.dcm").write_bytes(b"x")
    (tree.root / S1 / "imaging" / f"{S1}_09").mkdir()
    (tree.root / "EPL31_LHS_0009").mkdir()
    log = run_snakemake(tmp_path, "-n").stdout
    assert "stray.dcm: file directly in 'imaging/'" in log
    assert f"{S1}_09: empty session folder" in log
    assert "EPL31_LHS_0009: no 'imaging' folder" in log


def test_subjects_list_restricts_and_grows(tmp_path):
    build_example_tree(tmp_path / "input")
    first = run_snakemake(tmp_path, "--config", f"subjects=[{S2}]").stdout
    assert sessions_run(first) == {f"{S2}_01"}
    assert not (tmp_path / "output" / S1).exists()
    second = run_snakemake(tmp_path, "--config", f"subjects=[{S2},{S1}]").stdout
    assert sessions_run(second) == {f"{S1}_01", f"{S1}_02"}


def test_listed_subject_that_is_absent_is_an_error(tmp_path):
    build_example_tree(tmp_path / "input")
    result = run_snakemake(tmp_path, "-n", "--config", "subjects=[EPL31_LHS_0404]", check=False)
    assert result.returncode != 0 and "EPL31_LHS_0404 is listed in 'subjects'" in result.stdout


def test_bad_session_lists_every_bad_file_and_others_finish(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    bad = tree.session_dir(S1, f"{S1}_02")
    before = checksums(tree.root)
    good = bad / "anat" / "t2" / "IM_0001.dcm"
    (bad / "anat" / "t2" / "IM_0002.dcm").write_bytes(good.read_bytes()[:-1000])  # truncated pixel data
    (bad / "noise.dcm").write_bytes(os.urandom(4096))
    (bad / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    before = checksums(tree.root)

    result = run_snakemake(tmp_path, check=False)
    assert result.returncode != 0
    log = result.stdout
    assert f"session {S1}_02: 3 bad file(s)" in log
    for reason in (
        "anat/t2/IM_0002.dcm: pixel data is truncated",
        "noise.dcm: not a readable DICOM file",
        "broken.zip: corrupt or truncated archive",
    ):
        assert reason in log
    # --keep-going comes from the default profile: the other sessions are complete.
    for session in (f"{S1}_01",):
        out = session_output_dir(tmp_path / "output", S1, session.rsplit("_", 1)[1])
        assert output_files(out) == sorted(tree.expected_dicoms[(S1, session)])
    assert output_files(session_output_dir(tmp_path / "output", S2, "01"))
    assert not session_output_dir(tmp_path / "output", S1, "02").exists()
    assert checksums(tree.root) == before

    # Fix the files: only the failed session runs again.
    shutil.copy(good, bad / "anat" / "t2" / "IM_0002.dcm")
    (bad / "noise.dcm").unlink()
    (bad / "broken.zip").unlink()
    rerun = run_snakemake(tmp_path).stdout
    assert sessions_run(rerun) == {f"{S1}_02"}


def test_malformed_dates_are_emptied_counted_and_the_file_goes_through(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    path = tree.session_dir(S2, f"{S2}_01") / "anat" / "t1" / "IM_0001.dcm"
    dataset = pydicom.dcmread(path)
    dataset.StudyDate = "2020-01-15"
    dataset.RequestAttributesSequence[0].ScheduledProcedureStepStartDate = "15/01/2020"
    dataset.save_as(path)
    console = run_snakemake(tmp_path).stdout
    assert "2020-01-15" not in console and "15/01/2020" not in console
    out = pydicom.dcmread(session_output_dir(tmp_path / "output", S2, "01") / "anat" / "t1" / "IM_0001.dcm")
    assert out.StudyDate == ""
    report = json.loads((tmp_path / "output" / "reports" / S2 / f"{S2}_01.json").read_text())
    assert report["counts"]["values_repaired"] == 2
    assert report["repaired_values_by_keyword"] == {"ScheduledProcedureStepStartDate": 1, "StudyDate": 1}
    for path in files_below(tmp_path / "logs", tmp_path / "output", tmp_path / ".snakemake" / "log"):
        assert b"2020-01-15" not in path.read_bytes() and b"15/01/2020" not in path.read_bytes(), path
