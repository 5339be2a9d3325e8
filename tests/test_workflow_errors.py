"""How the workflow reacts to layouts and files it cannot take as they are."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from dicom_deid.example_tree import build_example_tree
from dicom_deid.keyfile import ensure_key
from dicom_deid.paths import session_output_dir
from helpers import checksums, files_below, output_files, run_snakemake, sessions_run

S1, S2 = "EPL31_LHS_0001", "EPL31_LHS_0002"


def summary_rows(workdir: Path) -> dict[str, dict]:
    with open(workdir / "output" / "reports" / "summary.tsv") as handle:
        return {row["session"]: row for row in csv.DictReader(handle, delimiter="\t")}


def status_file(workdir: Path, subject: str, session: str) -> Path:
    return workdir / "work" / "status" / subject / f"{session}.json"


def test_misnamed_session_folder_stops_even_a_dry_run(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    (tree.root / S1 / "imaging" / "session_03").mkdir()
    (tree.root / S1 / "imaging" / "session_03" / "IM1").write_bytes(b"x")
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "session_03" in result.stdout and "must be 'EPL31_LHS_0001_<SES>'" in result.stdout
    assert not (tmp_path / "output").exists()


def test_a_session_folder_named_in_latin_1_stops_planning_with_its_name(tmp_path):
    # It stopped planning with a traceback from deep in Snakemake (UnicodeEncodeError: surrogates not allowed).
    tree = build_example_tree(tmp_path / "input")
    folder = tree.root / S1 / "imaging" / os.fsdecode(f"{S1}_\xe9t\xe9".encode("latin-1"))
    folder.mkdir()
    (folder / "IM1").write_bytes(b"x")
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    assert f"{S1}_%E9t%E9: session folder name is not UTF-8 text" in result.stdout


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
    states = {session: row["state"] for session, row in summary_rows(tmp_path).items()}
    assert states == {f"{S1}_01": "not_run_yet", f"{S1}_02": "not_run_yet", f"{S2}_01": "published"}
    second = run_snakemake(tmp_path, "--config", f"subjects=[{S2},{S1}]").stdout
    assert sessions_run(second) == {f"{S1}_01", f"{S1}_02"}
    # The reports cover the whole output, not only the subjects of the latest run.
    third = run_snakemake(tmp_path, "--config", f"subjects=[{S2}]").stdout
    assert sessions_run(third) == set() and "no longer in the input" not in third
    assert {row["state"] for row in summary_rows(tmp_path).values()} == {"published"}
    assert len(summary_rows(tmp_path)) == 3


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
    # The reports are built all the same, from whatever finished; the failure is recorded outside the output.
    rows = summary_rows(tmp_path)
    assert {session: row["state"] for session, row in rows.items()} == {
        f"{S1}_01": "published", f"{S1}_02": "failed", f"{S2}_01": "published"
    }  # fmt: skip
    assert rows[f"{S1}_02"]["instances_written"] == ""
    status = json.loads(status_file(tmp_path, S1, f"{S1}_02").read_text())
    assert status["stage"] == "anonymize_session"
    assert {f["path"] for f in status["failures"]} == {"anat/t2/IM_0002.dcm", "noise.dcm", "broken.zip"}
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    assert "noise.dcm" in page and "logs/anonymize_session/EPL31_LHS_0001/EPL31_LHS_0001_02.log" in page

    # Fix the files: only the failed session runs again, and the reports show it published.
    shutil.copy(good, bad / "anat" / "t2" / "IM_0002.dcm")
    (bad / "noise.dcm").unlink()
    (bad / "broken.zip").unlink()
    rerun = run_snakemake(tmp_path).stdout
    assert sessions_run(rerun) == {f"{S1}_02"}
    assert summary_rows(tmp_path)[f"{S1}_02"]["state"] == "published"
    assert not status_file(tmp_path, S1, f"{S1}_02").exists()


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


def test_a_value_that_breaks_its_vr_is_never_quoted_on_the_console_or_in_logs(tmp_path):
    # pydicom warns about a value its VR does not allow and quotes it (a UID with letters, as some exports
    # write); a job's warnings reach Snakemake's console and, on a cluster, Slurm's log files.
    tree = build_example_tree(tmp_path / "input")
    path = tree.session_dir(S2, f"{S2}_01") / "anat" / "t1" / "IM_0001.dcm"
    dataset = pydicom.dcmread(path)
    dataset.StudyInstanceUID = "1.2.826.0.1.3680043.9.7.DOE1975"
    dataset.save_as(path)
    console = run_snakemake(tmp_path).stdout
    assert "DOE1975" not in console
    assert summary_rows(tmp_path)[f"{S2}_01"]["state"] == "published"
    for path in files_below(tmp_path / "logs", tmp_path / "output", tmp_path / ".snakemake" / "log"):
        assert b"DOE1975" not in path.read_bytes(), path


def _plant_patient_id_in_a_code(path: Path) -> bytes:
    """Copy the file's PatientID into BodyPartExamined, a code string (CS) that neither dicognito nor the scrub
    rewrites (codes are never rewritten): a leak only verification sees."""
    dataset = pydicom.dcmread(path)
    dataset.BodyPartExamined = str(dataset.PatientID)
    dataset.save_as(path)
    return str(dataset.PatientID).encode()


def test_publish_gate_holds_back_a_leaking_session_and_a_rerun_publishes_it(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    leaking = tree.session_dir(S1, f"{S1}_02") / "anat" / "t2" / "IM_0001.dcm"
    original = leaking.read_bytes()
    value = _plant_patient_id_in_a_code(leaking)

    result = run_snakemake(tmp_path, check=False)  # --keep-going from the default profile
    assert result.returncode != 0
    # Nothing of the session under the output: no folder, no report, not the value anywhere.
    assert not session_output_dir(tmp_path / "output", S1, "02").exists()
    assert not (tmp_path / "output" / "reports" / S1 / f"{S1}_02.json").exists()
    for path in files_below(tmp_path / "output"):
        assert value not in path.read_bytes(), path
    # Its log names the check and the file, never the value.
    log = (tmp_path / "logs" / "publish_session" / S1 / f"{S1}_02.log").read_text()
    assert (
        "[no_original_values_in_bytes] anat/t2/IM_0001.dcm: the original PatientID is present in BodyPartExamined"
        in log
    )
    for text in (log, result.stdout, *(p.read_text() for p in files_below(tmp_path / "work" / "status"))):
        assert value.decode() not in text
    # The other sessions are published; both reports exist and show the failure.
    for subject, session in ((S1, f"{S1}_01"), (S2, f"{S2}_01")):
        out = session_output_dir(tmp_path / "output", subject, session.removeprefix(subject + "_"))
        assert output_files(out) == sorted(tree.expected_dicoms[(subject, session)])
    rows = summary_rows(tmp_path)
    assert rows[f"{S1}_02"]["state"] == "failed"
    assert rows[f"{S1}_01"]["state"] == rows[f"{S2}_01"]["state"] == "published"
    failed = (tmp_path / "output" / "reports" / "report.html").read_text().split("<h2>Failed sessions</h2>")[1]
    failed = failed.split("<h2>")[0]
    assert f"{S1}_02" in failed and "no_original_values_in_bytes" in failed and "anat/t2/IM_0001.dcm" in failed

    # The cause removed, a rerun publishes only that session and updates the reports.
    leaking.write_bytes(original)
    rerun = run_snakemake(tmp_path).stdout
    assert sessions_run(rerun) == {f"{S1}_02"}
    assert output_files(session_output_dir(tmp_path / "output", S1, "02")) == sorted(
        tree.expected_dicoms[(S1, f"{S1}_02")]
    )
    assert summary_rows(tmp_path)[f"{S1}_02"]["state"] == "published"
    assert "<h2>Failed sessions</h2>\n<p>None.</p>" in (tmp_path / "output" / "reports" / "report.html").read_text()


def test_skip_file_publishes_the_rest_of_a_session_and_reports_what_was_left_out(tmp_path):
    tree = build_example_tree(tmp_path / "input")
    in_part = tree.session_dir(S1, f"{S1}_02")
    value = _plant_patient_id_in_a_code(in_part / "anat" / "t2" / "IM_0001.dcm")
    good = (in_part / "anat" / "t2" / "IM_0003.dcm").read_bytes()
    (in_part / "anat" / "t2" / "IM_0002.dcm").write_bytes(good[:-1000])  # truncated: cannot be read
    # A third subject whose every DICOM is bad: skip_file cannot publish anything of it.
    all_bad = tree.root / "EPL31_LHS_0003" / "imaging" / "EPL31_LHS_0003_01"
    all_bad.mkdir(parents=True)
    (all_bad / "IM1.dcm").write_bytes(good[:-1000])
    (all_bad / "notes.txt").write_text("not DICOM")

    result = run_snakemake(tmp_path, "--config", "on_bad_file=skip_file", check=False)
    assert result.returncode != 0  # one session failed
    rows = summary_rows(tmp_path)
    assert {session: (row["state"], row["files_left_out"]) for session, row in rows.items()} == {
        f"{S1}_01": ("published", "0"),
        f"{S1}_02": ("published_in_part", "2"),
        f"{S2}_01": ("published", "0"),
        "EPL31_LHS_0003_01": ("failed", ""),
    }
    # Published in part: everything but the two bad files, which are nowhere under the output.
    left_out = {"anat/t2/IM_0001.dcm", "anat/t2/IM_0002.dcm"}
    out = session_output_dir(tmp_path / "output", S1, "02")
    assert output_files(out) == sorted(set(tree.expected_dicoms[(S1, f"{S1}_02")]) - left_out)
    for path in files_below(tmp_path / "output"):
        assert value not in path.read_bytes(), path
    report = json.loads((tmp_path / "output" / "reports" / S1 / f"{S1}_02.json").read_text())
    assert report["state"] == "published_in_part"
    assert report["verification"].startswith("pass, 2 file(s) left out")
    reasons = {item["path"]: item["reason"] for item in report["files_left_out"]}
    assert reasons == {
        "anat/t2/IM_0001.dcm": "failed verification: no_original_values_in_bytes",
        "anat/t2/IM_0002.dcm": "pixel data is truncated (7192 of 8192 bytes)",
    }
    assert report["counts"]["instances_written"] == len(tree.expected_dicoms[(S1, f"{S1}_02")]) - 2
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    files_left_out = page.split("<h2>Files left out</h2>")[1].split("<h2>")[0]
    assert all(path in files_left_out for path in left_out) and "published in part" in page
    assert "EPL31_LHS_0003_01" in page.split("<h2>Failed sessions</h2>")[1].split("<h2>")[0]
    assert not session_output_dir(tmp_path / "output", "EPL31_LHS_0003", "01").exists()


def test_names_that_are_not_utf8_are_read_written_and_reported_as_percent_escapes(tmp_path):
    # Latin-1 names, as an older system or a tar made there gives them: the output keeps each name's bytes, the
    # reports, logs and zip member names write the byte that is not UTF-8 as %XX, and one such name stops nothing.
    mr = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    imaging = os.path.join(os.fsencode(tmp_path), b"input", b"S", b"imaging")
    good, bad = os.path.join(imaging, b"S_01"), os.path.join(imaging, b"S_02")
    os.makedirs(os.path.join(good, b"Stra\xdfe"))
    Path(os.fsdecode(os.path.join(good, b"Stra\xdfe", b"M\xfcller.dcm"))).write_bytes(mr)
    Path(os.fsdecode(os.path.join(good, b"notiz\xe4.txt"))).write_bytes(b"not DICOM")
    with tarfile.open(os.fsdecode(os.path.join(good, b"a.tar")), "w", format=tarfile.GNU_FORMAT) as archive:
        member = tarfile.TarInfo(os.fsdecode(b"scan\xe9/IM1.dcm"))  # the raw byte, as a Latin-1 tar holds it
        member.size = len(mr)
        archive.addfile(member, io.BytesIO(mr))
    os.makedirs(bad)
    Path(os.fsdecode(os.path.join(bad, b"ok.dcm"))).write_bytes(mr)
    Path(os.fsdecode(os.path.join(bad, b"leer\xe4.dcm"))).write_bytes(b"")

    result = run_snakemake(tmp_path, check=False)
    assert result.returncode != 0
    assert "session S_02: 1 bad file(s)" in result.stdout and "leer%E4.dcm: not a readable DICOM file" in result.stdout
    assert {s: row["state"] for s, row in summary_rows(tmp_path).items()} == {"S_01": "published", "S_02": "failed"}
    assert output_files(session_output_dir(tmp_path / "output", "S", "01")) == sorted(
        os.fsdecode(name) for name in (b"Stra\xdfe/M\xfcller.dcm", b"a/scan\xe9/IM1.dcm")
    )
    report = (tmp_path / "output" / "reports" / "S" / "S_01.json").read_text(encoding="utf-8")
    assert json.loads(report)["skipped"] == [{"path": "notiz%E4.txt", "reason": "notiz%E4.txt: not DICOM"}]
    page = (tmp_path / "output" / "reports" / "report.html").read_text(encoding="utf-8")
    assert "notiz%E4.txt" in page and "leer%E4.dcm" in page
    assert "leer%E4.dcm" in (tmp_path / "logs" / "anonymize_session" / "S" / "S_02.log").read_text(encoding="utf-8")
    for path in (tmp_path / "output" / "reports").rglob("*"):
        assert not path.is_file() or "\\udc" not in path.read_text(encoding="utf-8"), path

    zipped = run_snakemake(
        tmp_path, "--config", "output_layout=data2bids", "output_dir=zipped", "work_dir=work2", check=False
    )
    assert zipped.returncode != 0  # S_02 still holds its bad file
    with zipfile.ZipFile(tmp_path / "zipped" / "imaging" / "S" / "S_SE01_MRI.zip") as archive:
        assert sorted(archive.namelist()) == ["Stra%DFe/M%FCller.dcm", "a/scan%E9/IM1.dcm"]
    assert not list((tmp_path / "zipped").rglob("*.partial"))


def test_one_session_folder_name_under_two_subjects_keeps_its_own_log_and_row(tmp_path):
    # Subject S's session "1_01" and subject S_1's session "01" are both in a folder named S_1_01.
    mr = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    for subject in ("S", "S_1"):
        folder = tmp_path / "input" / subject / "imaging" / "S_1_01"
        folder.mkdir(parents=True)
        (folder / f"from_{subject}.dcm").write_bytes(mr)
    run_snakemake(tmp_path)
    for subject in ("S", "S_1"):
        log = (tmp_path / "logs" / "anonymize_session" / subject / "S_1_01.log").read_text()
        assert log.count("files to de-identify") == 1
        assert output_files(tmp_path / "output" / subject / "imaging" / "S_1_01") == [f"from_{subject}.dcm"]
    with open(tmp_path / "output" / "reports" / "summary.tsv") as handle:
        rows = [(row["session"], row["subject"]) for row in csv.DictReader(handle, delimiter="\t")]
    assert sorted(rows) == [("S_1_01", "S"), ("S_1_01", "S_1")]
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    look = page.split("<h2>Needs a look</h2>")[1].split("<h2>")[0]
    # The same file in both: the same patient under two subjects, named with both sessions by their labels.
    assert "<td>one patient under subjects S, S_1</td><td>S_1_01 (subject S), S_1_01 (subject S_1)</td>" in look
    page = page.replace(look, "")
    for subject in ("S", "S_1"):  # in every other table, and one bar each in the chart of instances
        assert page.count(f"S_1_01 (subject {subject})<") == page.count("S_1_01 (subject S)<") >= 4


def test_a_lost_key_stops_the_run_while_sessions_published_with_it_remain(tmp_path):
    # The key is every session's input: a new one would rerun every session under new pseudonyms, and the data
    # already released would no longer join the next release. So the workflow refuses until the key is back.
    folder = tmp_path / "input" / "S" / "imaging" / "S_01"
    folder.mkdir(parents=True)
    (folder / "IM1.dcm").write_bytes(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    run_snakemake(tmp_path)
    key = tmp_path / "keys" / "deid.key"
    backup = tmp_path / "deid.key.backup"
    shutil.copy2(key, backup)
    key.unlink()
    before = checksums(tmp_path / "output")
    result = run_snakemake(tmp_path, check=False)
    assert result.returncode != 0
    assert "key_file keys/deid.key is missing, but 1 session(s) in output were published with a key" in result.stdout
    assert not key.exists() and checksums(tmp_path / "output") == before
    shutil.copy2(backup, key)  # restored with its time (cp -p): nothing reruns
    assert "Nothing to be done" in run_snakemake(tmp_path).stdout
    # Another valid key (another project's, a new one made by hand) would have re-pseudonymized every session.
    ensure_key(tmp_path / "keys" / "other.key")
    result = run_snakemake(tmp_path, "--config", "key_file=keys/other.key", check=False)
    assert result.returncode != 0 and "rule " not in result.stdout
    assert "key_file keys/other.key is not the key the 1 session(s) in output were published with" in result.stdout
    assert checksums(tmp_path / "output") == before


def test_what_this_account_may_not_read_fails_its_session_by_name_or_stops_the_run(tmp_path):
    # Hospital shares hold folders and files that the account running the workflow may not read. Inside a session
    # they fail it by name, and the others finish; a session folder that cannot even be listed stops the run.
    mr = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    imaging = tmp_path / "input" / "P" / "imaging"
    unreadable = {"P_01": "IM1", "P_02": "IM2.dcm", "P_03": "locked/IM3.dcm", "P_04": "x.zip", "P_05": "IM5.dcm"}
    for session, name in unreadable.items():
        (imaging / session).mkdir(parents=True)
        (imaging / session / "ok.dcm").write_bytes(mr)
        if name:
            (imaging / session / name).parent.mkdir(exist_ok=True)
            (imaging / session / name).write_bytes(mr)
    locked = [imaging / "P_01" / "IM1", imaging / "P_02" / "IM2.dcm", imaging / "P_03" / "locked"]
    locked += [imaging / "P_04" / "x.zip", imaging / "P_05"]
    try:
        for path in locked:
            path.chmod(0)
        result = run_snakemake(tmp_path, "-n", check=False, as_site_account=True)
        assert result.returncode != 0
        assert "input/P/imaging/P_05: session folder not readable by this account" in result.stdout
        (imaging / "P_05").chmod(0o755)
        result = run_snakemake(tmp_path, check=False, as_site_account=True)
    finally:
        for path in locked:
            path.chmod(0o755)
    assert result.returncode != 0
    for session, reason in (
        ("P_01", "IM1: not readable (permission denied)"),
        ("P_02", "IM2.dcm: not readable (permission denied)"),
        ("P_03", "locked: folder not readable (permission denied)"),
        ("P_04", "x.zip: not readable (permission denied)"),
    ):
        assert f"session {session}: 1 bad file(s)" in result.stdout and reason in result.stdout
    states = {session: row["state"] for session, row in summary_rows(tmp_path).items()}
    assert states == {"P_01": "failed", "P_02": "failed", "P_03": "failed", "P_04": "failed", "P_05": "published"}


def test_files_not_written_are_named_without_the_values_their_neighbours_hold(tmp_path):
    # Beside a patient's images, notes, a cut file and a damaged archive named after the patient (MR_small's
    # CompressedSamples^MR1, PatientID 4MR1): the reports in the output name them, so their names are cleared of
    # every value the session's written files told; the log, outside the output, says which file is which.
    session = tmp_path / "input" / "S" / "imaging" / "S_01"
    folder = session / "CompressedSamples_MR1"
    folder.mkdir(parents=True)
    data = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    (folder / "IM1.dcm").write_bytes(data)
    (folder / "CompressedSamples notes.txt").write_text("scan notes")
    (session / "4MR1_report.txt").write_text("report")
    (session / "CompressedSamples_cut.dcm").write_bytes(data[:-1000])
    (session / "4MR1_export.zip").write_bytes(b"PK\x03\x04 not a zip")
    originals = ("CompressedSamples", "4MR1")

    failed = run_snakemake(tmp_path, check=False)
    assert failed.returncode != 0
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    assert "_cut.dcm" in page and "_export.zip" in page
    for value in originals:
        assert value not in page
    log = (tmp_path / "logs" / "anonymize_session" / "S" / "S_01.log").read_text()
    assert "CompressedSamples_cut.dcm is named " in log
    assert any(line.startswith("4MR1_export.zip: ") and " is shown as " in line for line in log.split("INFO "))

    run_snakemake(tmp_path, "--config", "on_bad_file=skip_file")
    report = json.loads((tmp_path / "output" / "reports" / "S" / "S_01.json").read_text())
    assert len(report["skipped"]) == 2 and len(report["files_left_out"]) == 2
    assert {item["path"].rsplit("_", 1)[-1] for item in report["files_left_out"]} == {"cut.dcm", "export.zip"}
    for path in (tmp_path / "output").rglob("*"):
        if path.is_file():
            for value in originals:
                assert value.encode() not in path.read_bytes() and value not in path.as_posix(), (value, path)


def test_the_reports_say_what_is_in_the_output_after_a_failed_rerun_and_a_withdrawn_session(tmp_path):
    sessions = {"A": ("A_01", "MR_small.dcm"), "B": ("B_01", "CT_small.dcm")}
    for subject, (session, packaged) in sessions.items():
        folder = tmp_path / "input" / subject / "imaging" / session
        folder.mkdir(parents=True)
        shutil.copy(get_testdata_file(packaged), folder / "IM1.dcm")
    run_snakemake(tmp_path)
    # A late file of A_01 is cut: its rerun fails before publishing, and the earlier output stays where it was.
    late = tmp_path / "input" / "A" / "imaging" / "A_01" / "IM2.dcm"
    late.write_bytes(Path(get_testdata_file("MR_small.dcm")).read_bytes()[:-1000])
    assert run_snakemake(tmp_path, check=False).returncode != 0
    assert (session_output_dir(tmp_path / "output", "A", "01") / "IM1.dcm").is_file()
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    assert "A_01 (failed; an earlier version is in the output)" in page
    assert "Failed in <code>anonymize_session</code>; an earlier version of it is still in the output" in page
    assert summary_rows(tmp_path)["A_01"]["needs_a_look"] == "an earlier version is in the output"
    assert "need a look" not in page  # the box names it among the sessions not published, not as published
    # B's consent is withdrawn: its folder goes, its output stays until removed, and the reports keep showing it.
    late.unlink()
    shutil.rmtree(tmp_path / "input" / "B")
    result = run_snakemake(tmp_path)
    assert "session B_01 is no longer in the input" in result.stdout
    rows = summary_rows(tmp_path)
    assert rows["A_01"]["state"] == "published" and rows["A_01"]["needs_a_look"] == ""
    assert rows["B_01"]["state"] == "published" and rows["B_01"]["needs_a_look"] == "its input folder is gone"
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    assert "1 published session(s) whose folder is gone from the input" in page and "B_01." in page
