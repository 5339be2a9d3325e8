"""Stage 4, report: the dataset summary (one TSV row per session) and a self-contained HTML page of the dataset,
what an ethics board or a data recipient reads.

Rules `dataset_summary` and `html_report` when every session was published; the Snakefile's `onerror:` handler
when a job failed, so the reports always show whatever finished. Both call `write_reports`.
Every discovered session is listed with its state: published or published in part (its session report), failed
(the status file its failing job left in work_dir), or not run yet (neither). Built from those records (which name
files by path inside the session and hold no DICOM value) and the configuration (whose key file path is shown,
never the key).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

from dicom_deid import tags
from dicom_deid.keyfile import patient_token, read_seed
from dicom_deid.paths import Paths, printable
from dicom_deid.records import (
    RecordError,
    SessionReport,
    SessionState,
    SessionStatus,
    StudyGroup,
    basic_options_in_use,
    private_tags_in_use,
    read_record,
    write_text_atomically,
)
from dicom_deid.verify import CHECKS

SUMMARY_COLUMNS = (
    "session",
    "input_files",
    "instances_written",
    "series",
    "modalities",
    "skipped_non_dicom",
    "dropped_dicomdir",
    "values_repaired",
    "verification",
    "state",
    "files_left_out",
    "subject",  # a session folder's name may recur under another subject: S_1_01 of subjects S and S_1
    "patients",  # distinct PatientIDs published
    "needs_a_look",  # what the page's "Needs a look" says of the session, in short; empty for nothing
)
COUNT_COLUMNS = SUMMARY_COLUMNS[1:8]

# A discovered session with neither a report nor a failure status.
NOT_RUN = "not_run_yet"
STATE_LABELS = {
    SessionState.PUBLISHED.value: "published",
    SessionState.PUBLISHED_IN_PART.value: "published in part",
    SessionState.FAILED.value: "failed",
    NOT_RUN: "not run yet",
}
SESSION_RULES = ("unpack_archives", "anonymize_session", "publish_session")

CHECK_DESCRIPTIONS = {
    "every_instance_once": "every input file has an outcome; each DICOM instance is in the output exactly once",
    "readable": "every output file reads with pydicom",
    "transfer_syntax_unchanged": "transfer syntax as in the original",
    "pixel_data_unchanged": "pixel data bytes as in the original",
    "replaced_tags_changed": "each of the 13 replaced attributes present and holding a new value",
    "removed_tags_absent": "none of the 4 removed attributes at any depth",
    "no_original_values_in_bytes": "no original identifying value anywhere in the file's bytes",
    "policy_held": "the options held (private elements, PatientName); file meta, preamble and padding the writer's",
    "profile_held": "profile basic: every attribute of PS3.15 Table E.1-1 in the input got its action (nothing to "
    "check under minimal)",
}

# Mappings of every session report shown as counts: what was scrubbed where, private elements kept and removed.
COUNT_MAPPINGS = {
    "scrubbed": "Known values scrubbed out of other elements",
    "private_elements": "Private elements kept and removed",
}


@dataclass
class SessionEntry:
    """One discovered session as the reports show it."""

    subject: str
    ses: str
    session: str
    state: str  # a SessionState value, or NOT_RUN
    report: SessionReport | None = None  # published (in part or whole)
    status: SessionStatus | None = None  # failed
    label: str = ""  # how the page names it: the session, and its subject where another subject has that name too
    input_gone: bool = False  # published once, and its folder is gone from the input: its output stays
    earlier_output: bool = False  # failed, and what an earlier run published of it is still in the output


def _read_or_none(path: Path, cls):
    """A record, or None when there is none; a record of an older version counts as none (its session reruns)."""
    try:
        return read_record(path, cls) if path.exists() else None
    except RecordError:
        return None


def read_sessions(
    paths: Paths, sessions: list[tuple[str, str]], gone: list[tuple[str, str]] = ()
) -> list[SessionEntry]:
    """The state of every session, (subject, ses), from what the session jobs left on disk; `gone`: published
    sessions whose folder is gone from the input (discovery.gone_sessions), shown while their output stays."""
    entries, gone = [], set(gone)
    for subject, ses in sorted({*sessions, *gone}):
        entry = SessionEntry(subject, ses, f"{subject}_{ses}", NOT_RUN)
        # A status file is newer than any report of its session: publishing deletes it.
        entry.status = _read_or_none(Path(paths.status(subject, ses)), SessionStatus)
        if entry.status is None:
            entry.report = _read_or_none(Path(paths.session_report(subject, ses)), SessionReport)
        if entry.status:
            entry.state = SessionState.FAILED.value
            # Snakemake removes a job's outputs only when it runs the job: a rerun that failed before publishing
            # leaves the earlier run's output in place.
            entry.earlier_output = os.path.lexists(paths.session_output(subject, ses))
        elif entry.report:
            entry.state = entry.report.state.value
        entry.input_gone = (subject, ses) in gone
        entries.append(entry)
    shared = {name for name, count in Counter(e.session for e in entries).items() if count > 1}
    for entry in entries:
        entry.label = f"{entry.session} (subject {entry.subject})" if entry.session in shared else entry.session
    return entries


def summary_table(entries: list[SessionEntry], mismatches: list[Mismatch] | None = None) -> str:
    """TSV with one row per session; counts only for published sessions. `mismatches`: findings_across_sessions."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    mismatches = findings_across_sessions(entries) if mismatches is None else mismatches
    for entry in entries:
        report = entry.report
        if report is None:
            look = "; ".join(needs_a_look(entry, mismatches))
            writer.writerow([entry.session, *[""] * len(COUNT_COLUMNS), "", entry.state, "", entry.subject, "", look])
            continue
        counts = [getattr(report.counts, column) for column in COUNT_COLUMNS]
        left_out = len(report.files_left_out)
        row = [entry.session, *counts, report.verification, entry.state, left_out, entry.subject]
        writer.writerow([*row, report.counts.patients, "; ".join(needs_a_look(entry, mismatches))])
    return out.getvalue()


def write_reports(
    config: dict,
    sessions: list[tuple[str, str]],
    summary: Path | None,
    page: Path | None,
    gone: list[tuple[str, str]] = (),
) -> None:
    """Write summary.tsv and/or report.html for these sessions (and those `gone` from the input, read_sessions),
    each atomically (a reader never sees half)."""
    entries = read_sessions(Paths.from_config(config), sessions, gone)
    mismatches = findings_across_sessions(entries, _seed(config))
    if summary is not None:
        _write_atomically(Path(summary), summary_table(entries, mismatches))
    if page is not None:
        _write_atomically(Path(page), build_html(entries, config, mismatches))


def _seed(config: dict) -> str | None:
    """The key, to match patients to the subjects' labels; None where it cannot be read (the reports are still
    built, without that check)."""
    try:
        return read_seed(config["key_file"])
    except (OSError, ValueError):
        return None


def _write_atomically(path: Path, text: str) -> None:
    # Reports written before write_report made their paths printable may still hold a name that is not UTF-8.
    write_text_atomically(path, printable(text))


# Fits a 1280-pixel window: tables never wider than the page, long paths (in <code>) wrap anywhere, not widen it.
STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1.5em;max-width:78em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f2f2f2}td.n{text-align:right}
.published{color:#176117}.published_in_part{color:#8a5a00;font-weight:bold}.failed{color:#a11;font-weight:bold}
.not_run_yet{color:#666}.pass{color:#176117}.fail{color:#a11;font-weight:bold}
code{background:#f5f5f5;overflow-wrap:anywhere}
.box{border-left:4px solid #a11;background:#fdf3f3;padding:.5em 1em;margin:1em 0}
svg{max-width:100%;height:auto}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{cell}</td>' if isinstance(cell, int) else f"<td>{cell}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _bar_chart(title: str, values: dict[str, int]) -> str:
    """Horizontal bars as inline SVG: no plotting library, no external file."""
    if not values:
        return ""
    width, bar, gap, label_width = 640, 18, 6, 220
    top = max(values.values()) or 1
    rows = []
    for index, (label, value) in enumerate(values.items()):
        y = index * (bar + gap)
        length = (width - label_width - 60) * value / top
        rows.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" font-size="12">{_e(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar}" fill="#4a7bb7"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 13}" font-size="12">{value}</text>'
        )
    height = len(values) * (bar + gap)
    return (
        f"<h3>{_e(title)}</h3>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(title)}">{"".join(rows)}</svg>'
    )


def _state(entry: SessionEntry) -> str:
    return f'<span class="{entry.state}">{_e(STATE_LABELS[entry.state])}</span>'


def _counts(report: SessionReport | None, name: str) -> dict:
    """A mapping of COUNT_MAPPINGS; none for a session with no report."""
    return getattr(report, name) if report is not None else {}


def _session_rows(entries: list[SessionEntry]) -> list[list]:
    rows = []
    for entry in entries:
        report = entry.report
        if report is None:
            rows.append([_e(entry.label), _state(entry), *[""] * (8 + len(COUNT_MAPPINGS))])
            continue
        counts = report.counts
        row = [
            _e(entry.label),
            _state(entry),
            counts.input_files,
            counts.instances_written,
            counts.series,
            _e(counts.modalities.replace(",", ", ")),
            counts.skipped_non_dicom + counts.dropped_dicomdir,
            len(report.files_left_out),
            counts.values_repaired,
            _e(report.settings.get("private_tags", "")),
        ]
        for name in COUNT_MAPPINGS:
            mapping = _counts(report, name)
            row.append(_e(", ".join(f"{key} {count}" for key, count in mapping.items())))
        rows.append(row)
    return rows


def _check_summary(entry: SessionEntry) -> tuple[str, str]:
    """(result, detail) of the verification checks of one session, one short line each."""
    if entry.report is not None:
        failing = [name for name, check in entry.report.checks.items() if check.failures]
        if failing:
            return '<span class="fail">fail</span>', _e(", ".join(failing))
        detail = f"all {len(entry.report.checks)} passed"
        if entry.report.files_left_out:
            detail += f" on the files published; {len(entry.report.files_left_out)} file(s) left out"
        return '<span class="pass">pass</span>', _e(detail)
    if entry.status is not None:
        checks = sorted({f.check for f in entry.status.failures if f.check})
        if checks:
            return '<span class="fail">fail</span>', _e(", ".join(checks))
        return "not reached", _e(f"the job failed in {entry.status.stage}")
    return "", "not run yet"


def _failed_section(entries: list[SessionEntry], paths: Paths) -> str:
    failed = [e for e in entries if e.status is not None]
    if not failed:
        return "<p>None.</p>"
    parts = []
    for entry in failed:
        status = entry.status
        log = paths.session_log(status.stage, entry.subject, entry.ses)
        rows = [
            [f"<code>{_e(f.path)}</code>" if f.path else "(the session)", _e(f.check or "bad input"), _e(f.reason)]
            for f in status.failures
        ]
        output = paths.session_output(entry.subject, entry.ses)
        in_output = (
            f"an earlier version of it is still in the output (<code>{_e(output)}</code>), without what changed "
            "in its input since: fix the input and rerun, or remove it"
            if entry.earlier_output
            else "nothing of it is in the output"
        )
        parts.append(
            f"<h3>{_e(entry.label)}</h3>"
            f"<p>Failed in <code>{_e(status.stage)}</code>; {in_output}. "
            f"Log: <code>{_e(log)}</code>.</p>" + _table(["file (path inside the session)", "check", "reason"], rows)
        )
        if status.files_left_out:
            left = [[f"<code>{_e(f.path)}</code>", _e(f.reason)] for f in status.files_left_out]
            parts.append("<p>Also set aside (on_bad_file: skip_file):</p>" + _table(["file", "reason"], left))
    return "".join(parts)


# The box names this many sessions per line at most: a site's run of hundreds must not bury the page under it.
BOX_NAMES = 12


def _some(names: list[str], separator: str = ", ") -> str:
    """The first BOX_NAMES names, and how many more there are."""
    more = f"{separator}and {len(names) - BOX_NAMES} more" if len(names) > BOX_NAMES else ""
    return separator.join(names[:BOX_NAMES]) + more


def _attention(entries: list[SessionEntry], mismatches: list[Mismatch]) -> str:
    """A box at the top naming every session not (yet) in the output, every published one that needs a look, and
    the subjects and patients that do not match (patient_mismatches)."""
    waiting = [e for e in entries if e.state in (SessionState.FAILED.value, NOT_RUN)]
    gone = [e for e in entries if e.input_gone]
    # Each session by what it holds; the mismatches across sessions get a line of their own, saying what they are.
    look = [(e, phrases) for e in entries if e.report is not None and (phrases := needs_a_look(e, []))]
    lines = []
    if waiting:
        names = _some([f"{_e(e.label)} ({_e('; '.join(_waiting_phrases(e)))})" for e in waiting])
        lines.append(
            f"<p>{len(waiting)} session(s) not published as their input now stands: {names}. "
            "See <em>Failed sessions</em> and <em>How to rerun</em> below.</p>"
        )
    if gone:
        lines.append(
            f"<p>{len(gone)} published session(s) whose folder is gone from the input (consent withdrawn, or the "
            f"session moved?): {_some([_e(e.label) for e in gone])}. Their output and reports stay until you remove "
            "them; each run's warnings name their folders.</p>"
        )
    if look:
        names = _some([f"{_e(e.label)} ({_e('; '.join(phrases))})" for e, phrases in look])
        lines.append(f"<p>{len(look)} published session(s) need a look: {names}. See <em>Needs a look</em>.</p>")
    for phrase, title in FINDING_TITLES.items():
        if whats := [_e(m.what) for m in mismatches if m.phrase == phrase]:
            lines.append(f"<p>{title}: {_some(whats, '; ')}. See <em>Needs a look</em>.</p>")
    return f'<div class="box">{"".join(lines)}</div>' if lines else ""


# What a finding across sessions says of each session concerned (needs_a_look), and how the box titles it.
PATIENTS_DIFFER = "subjects and patients do not match"
STUDY_SHARED = "a study also in another session"
FINDING_TITLES = {
    PATIENTS_DIFFER: "Subjects and patients do not match",
    STUDY_SHARED: "One study in more than one session",
}


class Mismatch(NamedTuple):
    """A finding across sessions: subjects and patients that do not match (patient_mismatches), or one study
    published in more than one session (shared_studies)."""

    what: str
    sessions: list[tuple[str, str]]  # (subject, ses) of each session concerned
    labels: list[str]  # how the page names them
    phrase: str = PATIENTS_DIFFER

    @classmethod
    def of(cls, what: str, entries: list[SessionEntry], labels: list[str] | None = None, phrase: str = PATIENTS_DIFFER):
        """The finding about these sessions, named by their labels unless `labels` says otherwise."""
        return cls(
            what,
            [(e.subject, e.ses) for e in entries],
            labels if labels is not None else [e.label for e in entries],
            phrase,
        )


EARLIER_OUTPUT = "an earlier version is in the output"
INPUT_GONE = "its input folder is gone"


def _waiting_phrases(entry: SessionEntry) -> list[str]:
    """A failed or not-run session, as the box names it."""
    return [STATE_LABELS[entry.state], *_output_phrases(entry)]


def _output_phrases(entry: SessionEntry) -> list[str]:
    """What a session that is not published as its input stands has in the output, and where its input is."""
    return [phrase for phrase, true in ((INPUT_GONE, entry.input_gone), (EARLIER_OUTPUT, entry.earlier_output)) if true]


def needs_a_look(entry: SessionEntry, mismatches: list[Mismatch]) -> list[str]:
    """What a session's reader should look at, one short phrase each: a failed session only for an earlier
    version of it in the output."""
    report = entry.report
    if report is None:
        return _output_phrases(entry)
    concerned = [m.phrase for m in mismatches if (entry.subject, entry.ses) in m.sessions]
    phrases = [INPUT_GONE] if entry.input_gone else []
    phrases += [phrase for phrase in FINDING_TITLES if phrase in concerned]
    if len(report.patient_groups) > 1:
        phrases.append(f"{len(report.patient_groups)} patients")
    if (days := max((g.study_days for g in report.patient_groups), default=0)) > 1:
        phrases.append(f"studies on {days} days")
    if report.repeated_instances:
        phrases.append(f"{len(report.repeated_instances)} file(s) repeating an instance")
    if report.burned_in:
        phrases.append(f"{len(report.burned_in)} file(s) whose pixels may show text")
    if report.case_clashes:
        phrases.append(f"{len(report.case_clashes)} path(s) differing from another only in case")
    return phrases


def _patients(entry: SessionEntry) -> list[str]:
    return [group.patient for group in entry.report.patient_groups if group.patient]


def patient_mismatches(entries: list[SessionEntry], seed: str | None = None) -> list[Mismatch]:
    """Each patient published under more than one subject, and each subject whose published sessions hold more
    patients between them than any one of them holds (a session of two patients is named on its own): a study
    exported into the wrong subject's folder, whole. With the key (`seed`), also each patient whose PatientID is
    another subject's label or session folder name: research sites often type those in at the scanner."""
    published = [e for e in entries if e.report is not None]
    sessions: dict[str, list[SessionEntry]] = {}
    for entry in published:
        for patient in _patients(entry):
            sessions.setdefault(patient, []).append(entry)
    found = []
    for its in sorted(sessions.values(), key=lambda its: [e.label for e in its]):
        subjects = sorted({e.subject for e in its})
        if len(subjects) > 1:
            found.append(Mismatch.of(f"one patient under subjects {', '.join(subjects)}", its))
    by_subject: dict[str, list[SessionEntry]] = {}
    for entry in published:
        by_subject.setdefault(entry.subject, []).append(entry)
    for subject, its in sorted(by_subject.items()):
        numbers: dict[str, int] = {}  # the subject's patients, numbered as first met
        for entry in its:
            for patient in _patients(entry):
                numbers.setdefault(patient, len(numbers) + 1)
        if len(numbers) > max(len(_patients(e)) for e in its):
            labels = [f"{e.label} (patient {', '.join(str(numbers[p]) for p in _patients(e)) or 'none'})" for e in its]
            found.append(
                Mismatch.of(f"subject {subject}: its sessions hold {len(numbers)} different patients", its, labels)
            )
    return found + (_label_mismatches(published, entries, seed) if seed else [])


def _shared(entries: list[SessionEntry]) -> list[list[tuple[SessionEntry, StudyGroup]]]:
    """Each study published in more than one session, with its files in each, in the order of the labels."""
    sessions: dict[str, list[tuple[SessionEntry, StudyGroup]]] = {}
    for entry in entries:
        for group in entry.report.studies if entry.report is not None else []:
            sessions.setdefault(group.study, []).append((entry, group))
    return sorted((its for its in sessions.values() if len(its) > 1), key=lambda its: [e.label for e, _ in its])


def shared_studies(entries: list[SessionEntry]) -> list[Mismatch]:
    """Each study published in more than one session: an export copied into a second session folder (a recipient
    would take the copy for a visit of its own), or one visit split across two folders. Numbered as the page
    lists them."""
    found = []
    for n, its in enumerate(_shared(entries), 1):
        sessions = [entry for entry, _ in its]
        what = f"study {n} in sessions {_some([e.label for e in sessions])}"  # short in the box; the section lists all
        found.append(Mismatch.of(what, sessions, phrase=STUDY_SHARED))
    return found


def findings_across_sessions(entries: list[SessionEntry], seed: str | None = None) -> list[Mismatch]:
    """Every finding that compares sessions: patient_mismatches, then shared_studies."""
    return patient_mismatches(entries, seed) + shared_studies(entries)


def _label_mismatches(published: list[SessionEntry], entries: list[SessionEntry], seed: str) -> list[Mismatch]:
    """Sessions holding a patient whose PatientID is another subject's label or session folder name."""
    # The digest of each label -> the subjects it belongs to (a folder name may recur: S_1_01 of S and of S_1),
    # and how the page names it.
    owners: dict[str, tuple[set[str], str]] = {}
    for entry in entries:
        owners.setdefault(patient_token(seed, entry.session), (set(), f"session {entry.session}"))[0].add(entry.subject)
    for subject in {entry.subject for entry in entries}:
        owners.setdefault(patient_token(seed, subject), (set(), f"subject {subject}"))[0].add(subject)
    found: dict[tuple[str, str], list[SessionEntry]] = {}
    for entry in published:
        for patient in _patients(entry):
            subjects, name = owners.get(patient, ({entry.subject}, ""))
            if entry.subject not in subjects:
                found.setdefault((entry.subject, name), []).append(entry)
    return [
        Mismatch.of(f"subject {subject} holds a PatientID that is the label of {label}", its)
        for (subject, label), its in sorted(found.items())
    ]


def _subsection(title: str, text: str, header: list[str], rows: list[list]) -> str:
    """A titled table with what it means; nothing without rows."""
    return f"<h3>{title}</h3>{text}" + _table(header, rows) if rows else ""


def _look_section(entries: list[SessionEntry], mismatches: list[Mismatch], config: dict) -> str:
    """Subjects and patients that do not match (patient_mismatches), studies published in more than one session,
    published sessions that hold more than one patient, studies on more than one day or a repeated instance, and
    published files whose pixels may show text."""
    published = [e for e in entries if e.report is not None]
    mixed = [
        [_e(e.label), n, group.files, group.series, f"<code>{_e(group.first_file)}</code>"]
        for e in published
        if len(e.report.patient_groups) > 1
        for n, group in enumerate(e.report.patient_groups, 1)
    ]
    repeats = [
        [
            _e(e.label),
            f"<code>{_e(r.path)}</code>",
            f"<code>{_e(r.same_as)}</code>",
            "the same" if r.identical else "different",
        ]
        for e in published
        for r in e.report.repeated_instances
    ]
    case_clashes = [
        [_e(e.label), f"<code>{_e(c.path)}</code>", f"<code>{_e(c.same_as)}</code>"]
        for e in published
        for c in e.report.case_clashes
    ]
    burned_in = [
        [_e(e.label), f"<code>{_e(item.path)}</code>", _e(item.reason)]
        for e in published
        for item in e.report.burned_in
    ]
    many_days = [
        [_e(e.label), group.study_days, group.span_days, group.files, f"<code>{_e(group.first_file)}</code>"]
        for e in published
        for group in e.report.patient_groups
        if group.study_days > 1
    ]
    mismatch_rows = [[_e(m.what), _e(", ".join(m.labels))] for m in mismatches if m.phrase == PATIENTS_DIFFER]
    shared = [
        [n, _e(entry.label), group.files, group.series, f"<code>{_e(group.first_file)}</code>"]
        for n, its in enumerate(_shared(published), 1)
        for entry, group in its
    ]
    per_subject = (
        "<p>With <code>date_shift: per_subject</code> the offset follows the PatientID: sessions of "
        "different patients moved by different offsets, so the intervals between them are not kept.</p>"
        if config.get("date_shift") == "per_subject"
        else ""
    )
    parts = [
        _subsection(
            "Subjects and patients that do not match",
            "<p>Across sessions, by PatientID: the same patient under two subjects (a study copied into another "
            "subject's folder, or one person enrolled twice), or a subject whose sessions belong to different "
            "patients. Open a session's files to see its pseudonymous PatientID; the crosswalk, if kept, maps it to "
            "the original.</p>" + per_subject,
            ["what", "sessions"],
            mismatch_rows,
        ),
        _subsection(
            FINDING_TITLES[STUDY_SHARED],
            "<p>The same study (StudyInstanceUID) is published in each of these sessions: an export copied into a "
            "second session folder, which a recipient would take for a visit of its own, or one visit split "
            "across two folders. Remove the study from the folders it does not belong in and rerun; a session "
            "folder removed whole leaves its published output for you to delete (see the warning of the next "
            "run).</p>",
            ["study", "session", "files", "series", "first file"],
            shared,
        ),
        _subsection(
            "Sessions holding more than one patient",
            "<p>Their files carry more than one PatientID: a study exported into the wrong subject's folder, or one "
            "patient registered under two IDs. Each patient's files are found by the first of them; move a stray "
            "study out of the session folder and rerun.</p>",
            ["session", "patient", "files", "series", "first file"],
            mixed,
        ),
        _subsection(
            "Sessions whose studies lie on more than one day",
            "<p>A session is one visit: studies of one patient on different days are two visits in one session "
            "folder, or a visit that crossed midnight. Distances in days are the real ones; no date is shown. Where "
            "a session holds more than one patient, each is counted apart.</p>",
            ["session", "days", "days from first to last", "files", "first file"],
            many_days,
        ),
        _subsection(
            "Files repeating another file's instance",
            "<p>Two files of a session hold the same SOP instance: an export copied twice into the session folder, "
            "or an image sent again after a change. Both are published; conversion keeps one of them. Remove the "
            "copy from the input and rerun, unless both are wanted.</p>",
            ["session", "file", "same instance as", "bytes"],
            repeats,
        ),
        _subsection(
            "Paths that differ only in case",
            "<p>Both files are published. Where file names ignore case (Windows, macOS), copying or unzipping the "
            "session there would make one overwrite the other. Rename one in the input and rerun.</p>",
            ["session", "file", "same path but for case as"],
            case_clashes,
        ),
        _subsection(
            "Published files whose pixels may show text",
            "<p>Names and dates burned into the image are not cleaned under profile <code>minimal</code>; look at "
            "these images before the data leave.</p>",
            ["session", "file (path inside the session)", "why"],
            burned_in,
        ),
    ]
    return "".join(parts) or "<p>Nothing.</p>"


def _rerun_section(entries: list[SessionEntry], paths: Paths) -> str:
    logs = ", ".join(f"<code>{_e(paths.session_log(rule, '<SUBJECT>', '<SES>'))}</code>" for rule in SESSION_RULES)
    text = (
        "<p>Fix what a failed session's log names, then run the same command again, e.g. "
        "<code>snakemake --cores N</code> with the same <code>--config</code>. Only failed sessions, sessions not "
        "run yet and sessions whose input changed run; published sessions are kept; this page and "
        f"<code>summary.tsv</code> are rebuilt. Each session job logs to {logs} (the failed rule's log is named "
        "under <em>Failed sessions</em>).</p>"
    )
    if any(e.state == SessionState.PUBLISHED_IN_PART.value for e in entries):
        text += (
            "<p>A session published in part runs again, whole, once a file in its input folder is replaced or "
            "removed.</p>"
        )
    return text


def _count_sections(entries: list[SessionEntry]) -> str:
    sections = []
    for name in COUNT_MAPPINGS:
        rows = [[_e(e.label), _e(key), count] for e in entries for key, count in _counts(e.report, name).items()]
        sections.append(f"<h2>{_e(COUNT_MAPPINGS[name])}</h2>" + _table(["session", "where", "count"], rows))
    return "".join(sections)


def _profile_line(config: dict) -> str:
    """What profile basic did beyond the rule above; nothing under minimal."""
    if config["profile"] != "basic":
        return ""
    options = ", ".join(basic_options_in_use(config)) or "none"
    return (
        "<li>Then the DICOM Basic Application Level Confidentiality Profile (PS3.15 Table E.1-1), action by "
        f"action, with the options: {_e(options)}; files whose pixels may show text held back.</li>"
    )


def build_html(entries: list[SessionEntry], config: dict, mismatches: list[Mismatch] | None = None) -> str:
    """The page; `mismatches`: findings_across_sessions, by default without the key."""
    paths = Paths.from_config(config)
    mismatches = findings_across_sessions(entries) if mismatches is None else mismatches
    with_report = [e for e in entries if e.report is not None]
    published = [e.report for e in with_report]
    states = {state: sum(e.state == state for e in entries) for state in STATE_LABELS}
    modalities: dict[str, int] = {}
    for report in published:
        for modality in filter(None, report.counts.modalities.split(",")):
            modalities[modality] = modalities.get(modality, 0) + 1
    skipped_rows = [
        [_e(e.label), f"<code>{_e(item.path)}</code>", _e(item.reason)]
        for e in with_report
        for item in e.report.skipped
    ]
    left_out_rows = [
        [_e(e.label), f"<code>{_e(item.path)}</code>", _e(item.reason)]
        for e in with_report
        for item in e.report.files_left_out
    ]
    repaired_rows = [
        [_e(e.label), _e(keyword), count]
        for e in with_report
        for keyword, count in e.report.repaired_values_by_keyword.items()
    ]
    check_rows = [[_e(e.label), *_check_summary(e)] for e in entries]
    check_list = "".join(f"<li><code>{_e(c)}</code>: {_e(CHECK_DESCRIPTIONS.get(c, ''))}</li>" for c in CHECKS)
    config_rows = [[f"<code>{_e(k)}</code>", f"<code>{_e(json.dumps(v))}</code>"] for k, v in sorted(config.items())]
    total = sum(r.counts.instances_written for r in published)
    counts_text = ", ".join(f'{n} <span class="{state}">{STATE_LABELS[state]}</span>' for state, n in states.items())
    session_header = ["session", "state", "input files", "instances", "series", "modalities", "skipped",
                      "left out", "values repaired", "private tags policy"]  # fmt: skip
    session_header += [title.lower() for title in COUNT_MAPPINGS.values()]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>De-identification report</title><style>{STYLE}</style></head>
<body>
<h1>De-identification report</h1>
<p>{len(entries)} session(s): {counts_text}. {total} DICOM instance(s) de-identified and published.</p>
{_attention(entries, mismatches)}
<h2>Sessions</h2>
{_table(session_header, _session_rows(entries))}
{_bar_chart("Instances per session", {e.label: e.report.counts.instances_written for e in with_report})}
{_bar_chart("Sessions per modality", dict(sorted(modalities.items())))}
<h2>Needs a look</h2>
{_look_section(entries, mismatches, config)}
<h2>Failed sessions</h2>
{_failed_section(entries, paths)}
<h2>How to rerun</h2>
{_rerun_section(entries, paths)}
<h2>Files left out</h2>
<p>With <code>on_bad_file: skip_file</code>, files that cannot be read or fail a check are left out of the output
and the rest of their session is published, "in part".</p>
{_table(["session", "file (path inside the session)", "reason"], left_out_rows) if left_out_rows else "<p>None.</p>"}
<h2>Verification checks</h2>
{_table(["session", "result", "checks"], check_rows)}
<p>Checked for every file before its session enters the output:</p>
<ul>{check_list}</ul>
<h2>Skipped files</h2>
{_table(["session", "file (path inside the session)", "reason"], skipped_rows) if skipped_rows else "<p>None.</p>"}
<h2>Malformed values emptied</h2>
{_table(["session", "attribute", "count"], repaired_rows) if repaired_rows else "<p>None.</p>"}
{_count_sections(entries)}
<h2>What was done</h2>
<ul>
<li>Replaced with consistent pseudonyms: {_e(", ".join(tags.REPLACED))}; names, dates (shifted) and UIDs
(remapped) by dicognito's defaults.</li>
<li>Removed at every depth: {_e(", ".join(tags.REMOVED))}.</li>
{_profile_line(config)}
<li>Kept untouched on request: {_e(", ".join(config["keep"]) or "nothing")}.
Private elements: {_e(private_tags_in_use(config))}.</li>
<li>A file that cannot be read or fails a check (<code>on_bad_file</code>): {_e(config["on_bad_file"])}.</li>
</ul>
<h2>Versions and configuration</h2>
{_table(["package", "version"], [[p, _e(version(p))] for p in ("dicognito", "pydicom", "snakemake")])}
{_table(["key", "value"], config_rows)}
<p>The key that seeds the pseudonyms is not shown; only where it is kept.</p>
</body></html>
"""
