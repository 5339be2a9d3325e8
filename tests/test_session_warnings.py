"""What a session's reader should look at is published with a warning that finds the files: more than one
patient in a session (a study exported into the wrong subject's folder), and files that repeat another file's
SOP instance (an export copied twice). On pydicom's real files."""

from __future__ import annotations

import csv
import datetime
import json
import logging
import shutil
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from dicom_deid.keyfile import read_seed, study_token
from dicom_deid.paths import Paths
from dicom_deid.records import Sources, default_policy, to_json
from dicom_deid.stages.anonymize import anonymize_session, study_day
from dicom_deid.stages.publish import publish_session
from dicom_deid.stages.report import (
    STUDY_SHARED,
    SessionEntry,
    build_html,
    patient_mismatches,
    read_sessions,
    shared_studies,
    summary_table,
)
from helpers import DEFAULT_CONFIG, read, run_snakemake

SEED = "patients test key"
# Real files of three patients, PatientID 1CT1, 4MR1 and none.
CT, MR, NO_ID = "CT_small.dcm", "MR_small.dcm", "JPEGLSNearLossless_08.dcm"


def _publish(tmp_path: Path, layout: dict[str, str], session: str = "S_01", **policy):
    """Copy files (pydicom's by name, or by absolute path) to `layout`'s paths, then anonymize and publish them
    as `session` into tmp_path / "out"."""
    sources = []
    for relpath, packaged in sorted(layout.items()):
        path = tmp_path / "in" / session / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(packaged if Path(packaged).is_absolute() else get_testdata_file(packaged), path)
        sources.append((relpath, str(path)))
    staged, files = Sources(sources), tmp_path / "work" / session
    results = anonymize_session(staged, files, default_policy(SEED, **policy), 1, session)
    report_path = tmp_path / "reports" / f"{session}.json"
    report = publish_session(staged, results, files, tmp_path / "out" / session, report_path, session, {})
    return report, results


def test_a_study_of_another_patient_in_the_session_is_counted_and_found(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        report, _ = _publish(tmp_path, {"T1/IM1.dcm": MR, "stray/IM9.dcm": CT})
    assert report.state == "published"  # a warning, not a failure: one patient under two IDs is common
    assert report.counts.patients == 2
    assert [(g.files, g.series, g.first_file) for g in report.patient_groups] == [
        (1, 1, "T1/IM1.dcm"),
        (1, 1, "stray/IM9.dcm"),
    ]
    assert "S_01: holds 2 patients (distinct PatientIDs)" in caplog.text and "stray/IM9.dcm" in caplog.text
    saved = (tmp_path / "reports" / "S_01.json").read_text()
    assert json.loads(saved)["patient_groups"][1]["first_file"] == "stray/IM9.dcm"
    for original in ("1CT1", "4MR1"):
        assert original not in saved and original not in caplog.text


def test_one_patient_and_files_without_a_patient_id_need_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        report, _ = _publish(tmp_path, {"IM1.dcm": CT, "SC/no_id.dcm": NO_ID})
    assert report.counts.patients == 1 and [g.first_file for g in report.patient_groups] == ["IM1.dcm"]
    assert read(tmp_path / "out" / "S_01" / "IM1.dcm").PatientID  # the count is of the IDs written
    assert "patients" not in caplog.text


def test_the_patient_of_a_file_is_a_keyed_digest_even_where_patient_id_is_kept(tmp_path):
    # keep: [PatientID] writes the original into the DICOMs the user chose to share, never into scratch records.
    report, results = _publish(tmp_path, {"a/IM1.dcm": CT, "b/IM2.dcm": MR}, keep=("PatientID",))
    assert read(tmp_path / "out" / "S_01" / "a" / "IM1.dcm").PatientID == "1CT1"
    assert report.counts.patients == 2
    records = json.dumps([to_json(result) for result in results])
    assert "1CT1" not in records and "4MR1" not in records
    assert len({result.patient for result in results}) == 2


def test_the_summary_counts_patients_per_session(tmp_path):
    report, _ = _publish(tmp_path, {"T1/IM1.dcm": MR, "stray/IM9.dcm": CT})
    entry = SessionEntry("S", "01", "S_01", report.state.value, report=report, label="S_01")
    header, row = (line.split("\t") for line in summary_table([entry]).splitlines())
    assert dict(zip(header, row, strict=True))["patients"] == "2"


def test_a_copied_export_is_published_whole_and_each_repeat_is_named(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        report, _ = _publish(tmp_path, {"DICOM/IM1.dcm": CT, "DICOM/IM2.dcm": MR, "copy/IM1.dcm": CT})
    assert report.state == "published" and report.counts.instances_written == 3  # nothing dropped unasked
    assert [(r.path, r.same_as, r.identical) for r in report.repeated_instances] == [
        ("copy/IM1.dcm", "DICOM/IM1.dcm", True)
    ]
    assert "S_01: copy/IM1.dcm repeats the SOP instance of DICOM/IM1.dcm (same bytes)" in caplog.text


def test_paths_that_differ_only_in_case_are_published_and_named(tmp_path, caplog):
    # A folder Scan/ beside an archive scan.ZIP (unpacked to scan/): both published, but a recipient on Windows or
    # macOS, where names ignore case, would keep one of the two IM1.dcm.
    with caplog.at_level(logging.WARNING):
        report, _ = _publish(tmp_path, {"Scan/IM1.dcm": CT, "scan/IM1.dcm": MR, "scan/IM2.dcm": NO_ID})
    assert report.state == "published" and report.counts.instances_written == 3
    assert [(c.path, c.same_as) for c in report.case_clashes] == [("scan/IM1.dcm", "Scan/IM1.dcm")]
    assert "S_01: scan/IM1.dcm differs from Scan/IM1.dcm only in case" in caplog.text
    entry = SessionEntry("S", "01", "S_01", report.state.value, report=report, label="S_01")
    header, row = (line.split("\t") for line in summary_table([entry]).splitlines())
    look = dict(zip(header, row, strict=True))["needs_a_look"]
    assert look.endswith("; 1 path(s) differing from another only in case")  # after 2 patients and others
    page = build_html([entry], DEFAULT_CONFIG)
    assert "Paths that differ only in case" in page and "<code>scan/IM1.dcm</code>" in page
    assert _publish(tmp_path / "apart", {"Scan/IM1.dcm": CT, "scan/IM2.dcm": MR})[0].case_clashes == []


def test_an_instance_sent_again_with_other_bytes_is_told_apart(tmp_path):
    # The same image resent after a correction: same SOP Instance UID, another description.
    resent = tmp_path / "resent.dcm"
    dataset = pydicom.dcmread(get_testdata_file(CT))
    dataset.StudyDescription = "corrected"
    dataset.save_as(resent)
    report, _ = _publish(tmp_path, {"a/IM1.dcm": CT, "b/IM1.dcm": str(resent)})
    assert [(r.path, r.same_as, r.identical) for r in report.repeated_instances] == [("b/IM1.dcm", "a/IM1.dcm", False)]


def test_distinct_instances_are_no_repeats(tmp_path):
    report, _ = _publish(tmp_path, {"IM1.dcm": CT, "IM2.dcm": MR, "IM3.dcm": NO_ID})
    assert report.repeated_instances == []


def test_a_study_in_the_wrong_subjects_folder_is_matched_across_sessions(tmp_path):
    # Subject A's second session is patient 4MR1's, and the same CT study was also put into subject B's folder.
    reports = {
        ("A", "01"): _publish(tmp_path, {"IM1.dcm": CT}, "A_01")[0],
        ("A", "02"): _publish(tmp_path, {"IM1.dcm": MR}, "A_02")[0],
        ("B", "01"): _publish(tmp_path, {"IM1.dcm": CT}, "B_01")[0],
        ("C", "01"): _publish(tmp_path, {"IM1.dcm": NO_ID}, "C_01")[0],  # no PatientID: matches nothing
    }
    entries = [SessionEntry(s, e, f"{s}_{e}", "published", report=r, label=f"{s}_{e}") for (s, e), r in reports.items()]
    assert [(m.what, m.labels) for m in patient_mismatches(entries)] == [
        ("one patient under subjects A, B", ["A_01", "B_01"]),
        ("subject A: its sessions hold 2 different patients", ["A_01 (patient 1)", "A_02 (patient 2)"]),
    ]
    config = {**DEFAULT_CONFIG, **{key: str(tmp_path / key) for key in ("output_dir", "work_dir", "log_dir")}}
    html = build_html(entries, config)
    assert "Subjects and patients do not match: one patient under subjects A, B; subject A:" in html
    assert "sessions of different patients moved by different offsets" in html  # date_shift: per_subject
    for original in ("1CT1", "4MR1"):
        assert original not in html


def test_one_patient_per_subject_over_sessions_matches(tmp_path):
    reports = {
        "01": _publish(tmp_path, {"IM1.dcm": CT}, "A_01")[0],
        "02": _publish(tmp_path, {"IM2.dcm": CT}, "A_02")[0],
    }
    entries = [SessionEntry("A", e, f"A_{e}", "published", report=r, label=f"A_{e}") for e, r in reports.items()]
    assert [(m.what, m.labels) for m in patient_mismatches(entries)] == []


def test_a_study_published_in_two_sessions_is_named_with_its_files_in_each(tmp_path):
    # Subject A's second session folder is a copy of its first (a fake follow-up visit), and its third holds the
    # rest of the first one's study (a visit split across two folders). Subject C's session is another study.
    split = tmp_path / "split.dcm"
    dataset = pydicom.dcmread(get_testdata_file(CT))
    dataset.SOPInstanceUID, dataset.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1143.1", "1.2.826.0.1.3680043.2.1143.2"
    dataset.save_as(split)
    reports = {
        ("A", "01"): _publish(tmp_path, {"IM1.dcm": CT}, "A_01")[0],
        ("A", "02"): _publish(tmp_path, {"copy/IM1.dcm": CT}, "A_02")[0],
        ("A", "03"): _publish(tmp_path, {"IM2.dcm": str(split)}, "A_03")[0],
        ("C", "01"): _publish(tmp_path, {"IM1.dcm": MR}, "C_01")[0],
    }
    entries = [SessionEntry(s, e, f"{s}_{e}", "published", report=r, label=f"{s}_{e}") for (s, e), r in reports.items()]
    assert patient_mismatches(entries) == []  # one patient per subject: only the study tells
    assert [(m.what, m.sessions) for m in shared_studies(entries)] == [
        ("study 1 in sessions A_01, A_02, A_03", [("A", "01"), ("A", "02"), ("A", "03")])
    ]
    assert [(g.files, g.series, g.first_file) for g in reports["A", "02"].studies] == [(1, 1, "copy/IM1.dcm")]
    study = {session: report.studies[0].study for session, report in reports.items()}
    assert study["A", "01"] == study["A", "03"] != study["C", "01"]
    rows = {line.split("\t")[0]: line.split("\t")[-1] for line in summary_table(entries).splitlines()[1:]}
    assert rows == {"A_01": STUDY_SHARED, "A_02": STUDY_SHARED, "A_03": STUDY_SHARED, "C_01": ""}
    config = {**DEFAULT_CONFIG, **{key: str(tmp_path / key) for key in ("output_dir", "work_dir", "log_dir")}}
    html = build_html(entries, config)
    assert "One study in more than one session: study 1 in sessions A_01, A_02, A_03." in html
    assert "Subjects and patients do not match" not in html
    # The digest is keyed: neither the original StudyInstanceUID nor the key is in the report.
    original = str(pydicom.dcmread(get_testdata_file(CT)).StudyInstanceUID)
    saved = (tmp_path / "reports" / "A_01.json").read_text()
    assert original not in saved and SEED not in saved and study["A", "01"] not in original
    assert study_token(SEED, original) == study["A", "01"] != study_token("another key", original)


DICOMDIR_TREE = Path(get_testdata_file("DICOMDIR")).parent


def test_pydicoms_real_multi_study_tree_matched_to_subjects_through_the_workflow(tmp_path):
    # pydicom's real export: patient 98890234 has a CT study (98892001) and MR studies (98892003); patient
    # 77654033 a CR and a CT study. Put in as sites do: a study per session, and one CT study misfiled as
    # subject A's third session and exported also into B's folder.
    sessions = {
        ("A", "01"): ["98892001"],
        ("A", "02"): ["98892003"],
        ("A", "03"): ["77654033/CT2"],
        ("B", "01"): ["77654033/CR1", "77654033/CR2", "77654033/CR3", "77654033/CT2"],
    }
    for (subject, ses), folders in sessions.items():
        for folder in folders:
            shutil.copytree(
                DICOMDIR_TREE / folder, tmp_path / "input" / subject / "imaging" / f"{subject}_{ses}" / folder
            )
    run_snakemake(tmp_path)
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    look = page.split("<h2>Needs a look</h2>")[1].split("<h2>")[0]
    rows = [row.split("</td><td>") for row in look.split("<tr><td>")[1:]]
    found = {row[0]: row[1].split("</td>")[0] for row in rows if row[0].startswith(("one patient", "subject"))}
    assert found == {
        "one patient under subjects A, B": "A_03, B_01",
        "subject A: its sessions hold 2 different patients": "A_01 (patient 1), A_02 (patient 1), A_03 (patient 2)",
    }
    # B_01 holds 77654033's CR study of 2001-01-01 and CT study of 1995-09-03: two visits in one session folder.
    days = look.split("<h3>Sessions whose studies lie on more than one day</h3>")[1].split("<h3>")[0]
    assert '<tr><td>B_01</td><td class="n">2</td><td class="n">1947</td>' in days
    assert "A_0" not in days and "2001" not in days and "1995" not in days
    # The files repeated between A_03 and B_01 are in other sessions: no repeat within a session is claimed.
    assert "Files repeating another file" not in look
    with open(tmp_path / "output" / "reports" / "summary.tsv") as handle:
        summary = {row["session"]: row["needs_a_look"] for row in csv.DictReader(handle, delimiter="\t")}
    assert summary == {
        "A_01": "subjects and patients do not match",
        "A_02": "subjects and patients do not match",
        "A_03": "subjects and patients do not match; a study also in another session",
        "B_01": "subjects and patients do not match; a study also in another session; studies on 2 days",
    }
    # The CT study exported into both folders is named as one study, with its files in each session.
    shared = look.split("<h3>One study in more than one session</h3>")[1].split("<h3>")[0]
    assert shared.count("<tr><td") == 2
    assert '<tr><td class="n">1</td><td>A_03</td><td class="n">4</td>' in shared
    assert '<tr><td class="n">1</td><td>B_01</td><td class="n">4</td>' in shared
    assert "One study in more than one session: study 1 in sessions A_03, B_01." in page
    report = json.loads((tmp_path / "output" / "reports" / "A" / "A_02.json").read_text())
    assert report["counts"]["patients"] == 1 and report["counts"]["series"] >= 3


def test_a_study_day_keeps_distances_within_a_patient_and_hides_the_date():
    def day(patient_id: str, study_date: str, seed: str = SEED) -> int:
        dataset = pydicom.Dataset()
        dataset.PatientID, dataset.StudyDate = patient_id, study_date
        return study_day(seed, dataset)

    assert day("P1", "20010101") - day("P1", "19950903") == 1947  # the real distance
    assert day("P1", "20010101") != day("P2", "20010101") != day("P1", "20010101", "another key")  # keyed offsets
    assert day("P1", "20010101") != datetime.date(2001, 1, 1).toordinal()
    for not_a_day in ("", "19000101", "2001010", "20011301", "2001-01-01"):
        assert day("P1", not_a_day) == 0


def test_a_patient_id_typed_as_another_subjects_label_is_named(tmp_path):
    # Research sites often type the subject's label in as PatientID at the scanner; a wrong one shows even when
    # the other subject's own files are not exported yet.
    typed = {
        ("EPL_0001", "01"): (MR, "EPL_0001"),  # its own label: right
        ("EPL_0002", "01"): (CT, "EPL_0001_01"),  # the other subject's session folder: wrong
        ("EPL_0003", "01"): (MR, ""),  # the file's own ID, 4MR1
    }
    for n, ((subject, ses), (packaged, patient_id)) in enumerate(typed.items(), 1):
        folder = tmp_path / "input" / subject / "imaging" / f"{subject}_{ses}"
        folder.mkdir(parents=True)
        dataset = pydicom.dcmread(get_testdata_file(packaged))
        dataset.StudyInstanceUID = f"1.2.826.0.1.3680043.2.1143.{n}"  # a study each, so only the labels tell
        if patient_id:
            dataset.PatientID = patient_id
        dataset.save_as(folder / "IM1.dcm")
    run_snakemake(tmp_path)
    with open(tmp_path / "output" / "reports" / "summary.tsv") as handle:
        summary = {row["session"]: row["needs_a_look"] for row in csv.DictReader(handle, delimiter="\t")}
    assert summary == {"EPL_0001_01": "", "EPL_0002_01": "subjects and patients do not match", "EPL_0003_01": ""}
    page = (tmp_path / "output" / "reports" / "report.html").read_text()
    finding = "subject EPL_0002 holds a PatientID that is the label of session EPL_0001_01"
    assert f"<td>{finding}</td><td>EPL_0002_01</td>" in page
    # The label check needs the key: without it (the page built from the records alone) it is not made.
    folders = {"output_dir": "output", "work_dir": "work", "log_dir": "logs"}
    config = {**DEFAULT_CONFIG, **{key: str(tmp_path / folder) for key, folder in folders.items()}}
    entries = read_sessions(Paths.from_config(config), list(typed))
    assert patient_mismatches(entries) == []
    assert [m.what for m in patient_mismatches(entries, read_seed(tmp_path / "keys" / "deid.key"))] == [finding]
