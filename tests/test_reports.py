"""The reports list every session with its state, from what the session jobs left behind, failed jobs included."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicom_deid.job import SessionError, clear_status, run_job
from dicom_deid.paths import Paths, session_of_record
from dicom_deid.records import (
    FORMAT_VERSION,
    Failure,
    PatientGroup,
    SessionState,
    SessionStatus,
    StudyGroup,
    read_record,
    to_json,
    write_record,
)
from dicom_deid.stages import report
from dicom_deid.stages.report import (
    SUMMARY_COLUMNS,
    build_html,
    needs_a_look,
    read_sessions,
    summary_table,
    write_reports,
)
from helpers import REPO, sample_sessions

OLD_COLUMNS = [
    "session", "input_files", "instances_written", "series", "modalities", "skipped_non_dicom", "dropped_dicomdir",
    "values_repaired", "verification",
]  # fmt: skip


def _rows(tsv: str) -> dict[str, dict]:
    return {row["session"]: row for row in csv.DictReader(io.StringIO(tsv), delimiter="\t")}


def test_status_path_is_outside_the_output_and_names_its_session(tmp_path):
    paths = Paths.from_config({"input_dir": "i", "output_dir": "out", "work_dir": "w", "log_dir": "l",
                               "output_layout": "mirror"})  # fmt: skip
    status = paths.status("EPL31_LHS_0001", "02")
    assert status == "w/status/EPL31_LHS_0001/EPL31_LHS_0001_02.json"
    assert session_of_record(status) == ("EPL31_LHS_0001", "02")  # subjects hold '_': not split on it


def test_failed_job_records_its_failures_and_exits_non_zero(tmp_path):
    status = tmp_path / "status" / "SUBJ_0001" / "SUBJ_0001_02.json"
    failures = [Failure("anat/IM1.dcm", "an original identifying value is present", "no_original_values_in_bytes")]

    def fails():
        raise SessionError("session SUBJ_0001_02: 1 verification failure(s)", failures)

    with pytest.raises(SystemExit) as exited:
        run_job(str(tmp_path / "job.log"), fails, status=str(status), stage="publish_session")
    assert exited.value.code != 0
    recorded = read_record(status, SessionStatus)
    assert (recorded.session, recorded.subject, recorded.ses) == ("SUBJ_0001_02", "SUBJ_0001", "02")
    assert recorded.state is SessionState.FAILED and recorded.stage == "publish_session"
    assert recorded.failures == failures
    assert to_json(recorded)["version"] == FORMAT_VERSION
    clear_status(str(status))
    assert not status.exists()


def test_unexpected_error_is_recorded_with_the_log_to_read(tmp_path):
    status = tmp_path / "S_1" / "S_1_01.json"
    log = tmp_path / "job.log"

    def crashes():
        raise KeyError("secret value never to be shown")

    with pytest.raises(KeyError):
        run_job(str(log), crashes, status=str(status), stage="anonymize_session")
    recorded = read_record(status, SessionStatus)
    assert recorded.failures == [Failure("", f"unexpected error, see the log {log}")]
    assert "secret value" not in status.read_text()


def test_a_script_that_fails_leaves_its_status(tmp_path):
    # The real entry point, as Snakemake runs it: a missing scratch folder is an unexpected error.
    status = tmp_path / "work" / "status" / "S_1" / "S_1_01.json"
    command = [
        sys.executable, str(REPO / "scripts" / "publish_session.py"), "--anonymized", str(tmp_path / "missing"),
        "--output", str(tmp_path / "out"), "--report", str(tmp_path / "r.json"), "--session", "S_1_01",
        "--settings", "{}", "--on-bad-file", "fail_session", "--log", str(tmp_path / "p.log"), "--status", str(status),
    ]  # fmt: skip
    assert subprocess.run(command, capture_output=True, check=False).returncode != 0
    assert read_record(status, SessionStatus).stage == "publish_session"


def test_every_session_is_listed_with_its_state(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    states = {e.session: e.state for e in read_sessions(Paths.from_config(config), sessions)}
    assert states == {
        "SUBJ_0001_01": "published",
        "SUBJ_0001_02": "published_in_part",
        "SUBJ_0002_01": "failed",
        "SUBJ_0003_01": "not_run_yet",
    }


def test_a_failure_newer_than_the_published_report_wins(tmp_path):
    # A published session whose input changed and whose rerun failed: its old report is still on disk.
    config, sessions = sample_sessions(tmp_path)
    paths = Paths.from_config(config)
    failed = read_record(Path(paths.status("SUBJ_0002", "01")), SessionStatus)
    failed.subject, failed.ses, failed.session = "SUBJ_0001", "01", "SUBJ_0001_01"
    write_record(Path(paths.status("SUBJ_0001", "01")), failed)
    states = {e.session: e.state for e in read_sessions(paths, sessions)}
    assert states["SUBJ_0001_01"] == "failed"


def test_summary_keeps_its_columns_and_adds_state_and_files_left_out(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    table = summary_table(read_sessions(Paths.from_config(config), sessions))
    added = ["state", "files_left_out", "subject", "patients", "needs_a_look"]  # appended: readers by position work
    assert table.splitlines()[0].split("\t") == [*OLD_COLUMNS, *added]
    assert list(SUMMARY_COLUMNS) == [*OLD_COLUMNS, *added]
    rows = _rows(table)
    assert rows["SUBJ_0001_01"]["patients"] == "2" and rows["SUBJ_0001_02"]["patients"] == "1"
    assert rows["SUBJ_0002_01"]["patients"] == ""  # failed: nothing published
    assert rows["SUBJ_0001_01"]["needs_a_look"] == (
        "subjects and patients do not match; a study also in another session; 2 patients; studies on 2 days; "
        "1 file(s) repeating an instance; 1 file(s) whose pixels may show text"
    )
    assert rows["SUBJ_0001_02"]["needs_a_look"] == "subjects and patients do not match; a study also in another session"
    assert rows["SUBJ_0002_01"]["needs_a_look"] == ""
    assert rows["SUBJ_0001_01"]["state"] == "published" and rows["SUBJ_0001_01"]["files_left_out"] == "0"
    assert rows["SUBJ_0001_02"]["state"] == "published_in_part" and rows["SUBJ_0001_02"]["files_left_out"] == "1"
    assert rows["SUBJ_0001_02"]["verification"].startswith("pass, 1 file(s) left out")
    for session, state in (("SUBJ_0002_01", "failed"), ("SUBJ_0003_01", "not_run_yet")):
        assert rows[session]["state"] == state
        assert all(rows[session][column] == "" for column in OLD_COLUMNS[1:] + ["files_left_out"])


def test_html_shows_failures_files_left_out_and_how_to_rerun(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    summary, page = tmp_path / "out" / "summary.tsv", tmp_path / "out" / "report.html"
    write_reports(config, sessions, summary, page)
    html = page.read_text()
    assert set(_rows(summary.read_text())) == {f"{s}_{e}" for s, e in sessions}
    for heading in ("Sessions", "Failed sessions", "Files left out", "How to rerun", "Verification checks"):
        assert f"<h2>{heading}</h2>" in html
    failed = html.split("<h2>Failed sessions</h2>")[1].split("<h2>")[0]
    assert "SUBJ_0002_01" in failed and "no_original_values_in_bytes" in failed
    assert "SE0004_T1_MPRAGE_SAG_1MM_ISO_ACCELERATED_GRAPPA2_NAVIGATED/IM00001234567890.dcm" in failed
    assert f"{config['log_dir']}/publish_session/SUBJ_0002/SUBJ_0002_01.log" in failed
    left_out = html.split("<h2>Files left out</h2>")[1].split("<h2>")[0]
    assert "SUBJ_0001_02" in left_out and "failed verification: no_original_values_in_bytes" in left_out
    assert "published in part" in html and "not run yet" in html and "SUBJ_0003_01" in html
    rerun = html.split("<h2>How to rerun</h2>")[1].split("<h2>")[0]
    assert "snakemake --cores N" in rerun
    assert f"{config['log_dir']}/anonymize_session/&lt;SUBJECT&gt;/&lt;SUBJECT&gt;_&lt;SES&gt;.log" in rerun
    assert "Private elements: safe" in html
    assert "<script" not in html and "src=" not in html and "href=" not in html


def test_two_patients_a_repeated_instance_and_pixels_that_may_show_text_need_a_look(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    html = build_html(read_sessions(Paths.from_config(config), sessions), config)
    box = html.split('<div class="box">')[1].split("</div>")[0]
    assert (
        "1 published session(s) need a look: SUBJ_0001_01 (2 patients; studies on 2 days; "
        "1 file(s) repeating an instance; 1 file(s) whose pixels may show text)" in box
    )
    look = html.split("<h2>Needs a look</h2>")[1].split("<h2>")[0]
    assert "<h3>Sessions holding more than one patient</h3>" in look
    assert "<code>ST0001/SE0001/IM0001.dcm</code>" in look and '<td class="n">12</td>' in look
    assert "<h3>Published files whose pixels may show text</h3>" in look and "secondary capture" in look
    assert "subject SUBJ_0001: its sessions hold 3 different patients" in look
    assert "SUBJ_0001_01 (patient 1, 2), SUBJ_0001_02 (patient 3)" in look
    days = look.split("<h3>Sessions whose studies lie on more than one day</h3>")[1].split("<h3>")[0]
    assert '<td>SUBJ_0001_01</td><td class="n">2</td><td class="n">7</td>' in days
    repeats = look.split("<h3>Files repeating another file's instance</h3>")[1].split("<h3>")[0]
    assert "<code>copy/IM0001.dcm</code>" in repeats and "<td>the same</td>" in repeats
    assert "SUBJ_0001_02" not in look.split("<h3>Sessions holding")[1]  # one patient, no capture


def test_the_box_names_a_dozen_sessions_and_counts_the_rest_while_the_sections_list_all(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    looked_at = next(e for e in read_sessions(Paths.from_config(config), sessions) if e.session == "SUBJ_0001_01")
    entries = [
        dataclasses.replace(looked_at, subject=f"S{n:03d}", ses="01", session=f"S{n:03d}_01", label=f"S{n:03d}_01")
        for n in range(30)
    ]
    html = build_html(entries, config)
    box = html.split('<div class="box">')[1].split("</div>")[0]
    assert "30 published session(s) need a look: S000_01 (" in box and "S011_01 (" in box
    assert "S012_01" not in box and ", and 18 more. See" in box
    look = html.split("<h2>Needs a look</h2>")[1].split("<h2>")[0]
    assert all(f"S{n:03d}_01" in look for n in range(30))


def test_a_dataset_of_one_patient_and_a_study_per_session_needs_no_look(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    entries = read_sessions(Paths.from_config(config), sessions)
    for entry in entries:
        if entry.report is not None:
            entry.report.patient_groups = [PatientGroup(14, 6, "IM1.dcm", "a1")]  # the same patient in each
            entry.report.studies = [StudyGroup(entry.session, 14, 6, "IM1.dcm")]  # a study (visit) each
            entry.report.burned_in, entry.report.repeated_instances = [], []
    html = build_html(entries, config)
    assert html.split("<h2>Needs a look</h2>")[1].split("<h2>")[0].strip() == "<p>Nothing.</p>"
    assert "need a look" not in html


def test_scrubbed_values_and_private_elements_are_counted_per_session(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    html = build_html(read_sessions(Paths.from_config(config), sessions), config)
    scrubbed = html.split("<h2>Known values scrubbed out of other elements</h2>")[1].split("<h2>")[0]
    assert "PatientID in private (0029,xx20)" in scrubbed and '<td class="n">2</td>' in scrubbed
    private = html.split("<h2>Private elements kept and removed</h2>")[1].split("<h2>")[0]
    assert "kept" in private and '<td class="n">40</td>' in private


def test_a_report_that_cannot_be_built_leaves_the_previous_one(tmp_path, monkeypatch):
    config, sessions = sample_sessions(tmp_path)
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir(parents=True)
    page.write_text("the previous report")

    def broken(*args):
        raise RuntimeError("stopped half way")

    monkeypatch.setattr(report, "build_html", broken)
    with pytest.raises(RuntimeError):
        write_reports(config, sessions, None, page)
    assert page.read_text() == "the previous report"
    assert not list(page.parent.glob("*.partial"))


def test_a_report_with_a_name_that_is_not_utf8_still_gives_a_page(tmp_path):
    # Reports written before paths were made printable hold such a name as a lone surrogate; one of them must not
    # stop the dataset's page or summary.
    config, sessions = sample_sessions(tmp_path)
    path = Path(Paths.from_config(config).session_report("SUBJ_0001", "01"))
    data = json.loads(path.read_text())
    name = os.fsdecode(b"notiz\xe4.txt")
    data["skipped"] = [{"path": name, "reason": f"{name}: not DICOM"}]
    path.write_text(json.dumps(data))
    page = tmp_path / "out" / "report.html"
    write_reports(config, sessions, None, page)
    assert "notiz%E4.txt: not DICOM" in page.read_text(encoding="utf-8")


def test_a_failed_session_names_its_files_printably_in_status_log_and_console(tmp_path, capsys):
    # A name that is not UTF-8 (os.fsdecode holds its Latin-1 byte as a lone surrogate) is shown as %XX everywhere.
    status, log = tmp_path / "status" / "S" / "S_01.json", tmp_path / "job.log"
    name = os.fsdecode(b"leer\xe4.dcm")

    def fails():
        raise SessionError(f"session S_01: 1 bad file(s):\n  - {name}: not DICOM", [Failure(name, "not DICOM")])

    with pytest.raises(SystemExit):
        run_job(str(log), fails, status=str(status), stage="anonymize_session")
    assert "- leer%E4.dcm: not DICOM" in capsys.readouterr().err
    assert "- leer%E4.dcm: not DICOM" in log.read_text(encoding="utf-8")
    assert read_record(status, SessionStatus).failures == [Failure("leer%E4.dcm", "not DICOM")]


def test_what_was_done_says_what_profile_basic_did_to_private_elements(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    entries = read_sessions(Paths.from_config(config), sessions)
    minimal = build_html(entries, config).split("<h2>What was done</h2>")[1].split("<h2>")[0]
    assert "Confidentiality Profile" not in minimal and "Private elements: safe." in minimal
    basic = {**config, "profile": "basic", "basic_options": {**config["basic_options"], "clean_descriptors": "true"}}
    done = build_html(entries, basic).split("<h2>What was done</h2>")[1].split("<h2>")[0]
    assert "Confidentiality Profile (PS3.15 Table E.1-1)" in done and "options: clean_descriptors;" in done
    assert "Private elements: remove." in done  # without Retain Safe Private, whatever private_tags says


def test_a_failed_session_whose_input_folder_is_gone_says_so(tmp_path):
    config, sessions = sample_sessions(tmp_path)
    gone = [("SUBJ_0002", "01")]  # failed, and its folder removed from the input since
    entries = read_sessions(Paths.from_config(config), [s for s in sessions if s not in gone], gone)
    failed = next(e for e in entries if e.session == "SUBJ_0002_01")
    assert failed.state == "failed" and failed.input_gone and not failed.earlier_output
    assert needs_a_look(failed, []) == ["its input folder is gone"]
