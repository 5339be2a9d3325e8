"""Every path the workflow reads or writes, built here for the rules and the code alike.

    input    <input_dir>/<SUBJECT>/imaging/<SUBJECT>_<SES>/...
    scratch  <work_dir>/<SUBJECT>/<SUBJECT>_<SES>/unpacked/     (unpack stage: sources.json, members/)
             <work_dir>/<SUBJECT>/<SUBJECT>_<SES>/anonymized/   (anonymize stage: sources.json, results.json, files/)
    status   <work_dir>/status/<SUBJECT>/<SUBJECT>_<SES>.json   (a failed session's outcome, for the reports;
             outside the output, since nothing of a failed session may appear there)
    output   <output_dir>/<SUBJECT>/imaging/<SUBJECT>_<SES>/...           output_layout: mirror
             <output_dir>/imaging/<SUBJECT>/<SUBJECT>_SE<SES>_MRI.zip     output_layout: data2bids
    reports  <output_dir>/reports/summary.tsv, report.html, <SUBJECT>/<SUBJECT>_<SES>.json
    logs     <log_dir>/<rule>/<SUBJECT>/<SUBJECT>_<SES>.log, <log_dir>/<rule>.log

Methods take the subject and the session suffix as strings; the rules pass "{subject}" and "{ses}" and get
Snakemake's patterns back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGING = "imaging"
REPORTS = "reports"
# Folders directly under output_dir that are not subjects: no subject may carry these names.
RESERVED = (REPORTS, IMAGING)

# Inside the scratch folders (each one Snakemake output, so the DAG stays small).
SOURCES_LIST = "sources.json"  # unpacked/ and anonymized/: every file to de-identify and where to read it
MEMBERS = "members"  # unpacked/: the members of the session's archives
ANONYMIZED_FILES = "files"  # anonymized/: the de-identified files, laid out as in the output
RESULTS = "results.json"  # anonymized/: every file's outcome and checks
STATUS = "status"  # <work_dir>/status/: one file per failed session


# Linux file names are bytes. Python holds the bytes of a name that are not UTF-8 (a Latin-1 name from an older
# system, a tar made there) as lone surrogates (os.fsdecode): the file reads and writes fine, but no UTF-8 text can
# hold them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def printable(text: str) -> str:
    """`text` (a path, or a message naming one) as the reports, the logs and zip member names show it: each byte
    of a name that is not UTF-8 written as %XX, e.g. `M%FCller.dcm` for `M\\xfcller.dcm` in Latin-1."""
    return _NOT_UTF8.sub(lambda match: f"%{ord(match.group()) - 0xDC00:02X}", text)


def session_name(subject: str, ses: str) -> str:
    return f"{subject}_{ses}"


def session_of_record(record_path: str | Path) -> tuple[str, str]:
    """(subject, ses) of a path built by Paths.status or Paths.session_report (<SUBJECT>/<SUBJECT>_<SES>.json): the
    inverse, since subjects may hold '_'."""
    path = Path(record_path)
    subject = path.parent.name
    return subject, path.stem.removeprefix(f"{subject}_")


def session_input_dir(input_dir: str | Path, subject: str, ses: str) -> Path:
    return Path(input_dir) / subject / IMAGING / session_name(subject, ses)


def session_output_dir(output_dir: str | Path, subject: str, ses: str) -> Path:
    """The mirrored layout: the session's files at the same paths, relative to its folder, as in the input."""
    return session_input_dir(output_dir, subject, ses)


def data2bids_label(subject: str, ses: str) -> str:
    """The label data2bids gives a session's zip and its PatientName."""
    return f"{subject}_SE{ses}_MRI"


def session_output_zip(output_dir: str | Path, subject: str, ses: str) -> Path:
    """data2bids' layout for SPReD/Brain-CODE uploads: one zip per session."""
    return Path(output_dir) / IMAGING / subject / f"{data2bids_label(subject, ses)}.zip"


@dataclass(frozen=True)
class Paths:
    """The configured folders, and every path below them."""

    input_dir: str
    output_dir: str
    work_dir: str
    log_dir: str
    data2bids: bool  # output_layout: data2bids (one zip per session) rather than mirror

    @classmethod
    def from_config(cls, config: dict) -> Paths:
        return cls(
            input_dir=config["input_dir"],
            output_dir=config["output_dir"],
            work_dir=config["work_dir"],
            log_dir=config["log_dir"],
            data2bids=config["output_layout"] == "data2bids",
        )

    def session_input(self, subject: str, ses: str) -> str:
        return str(session_input_dir(self.input_dir, subject, ses))

    def _scratch(self, subject: str, ses: str, stage: str) -> str:
        return f"{self.work_dir}/{subject}/{session_name(subject, ses)}/{stage}"

    def unpacked(self, subject: str, ses: str) -> str:
        """The unpack stage's scratch folder (only sessions that hold archives have one)."""
        return self._scratch(subject, ses, "unpacked")

    def anonymized(self, subject: str, ses: str) -> str:
        """The anonymize stage's scratch folder: the de-identified files before they are verified."""
        return self._scratch(subject, ses, "anonymized")

    def status(self, subject: str, ses: str) -> str:
        """A failed session's status file (records.SessionStatus); absent once the session is published."""
        return f"{self.work_dir}/{STATUS}/{subject}/{session_name(subject, ses)}.json"

    def session_output(self, subject: str, ses: str) -> str:
        """What a published session becomes: its folder, or data2bids' zip."""
        if self.data2bids:
            return str(session_output_zip(self.output_dir, subject, ses))
        return str(session_output_dir(self.output_dir, subject, ses))

    @property
    def reports_dir(self) -> str:
        return f"{self.output_dir}/{REPORTS}"

    def session_report(self, subject: str, ses: str) -> str:
        return f"{self.reports_dir}/{subject}/{session_name(subject, ses)}.json"

    @property
    def summary(self) -> str:
        return f"{self.reports_dir}/summary.tsv"

    @property
    def html_report(self) -> str:
        return f"{self.reports_dir}/report.html"

    def session_log(self, rule: str, subject: str, ses: str) -> str:
        # Under the subject, as the reports: subject S's session folder S_1_01 and subject S_1's share a name.
        return f"{self.log_dir}/{rule}/{subject}/{session_name(subject, ses)}.log"

    def log(self, rule: str) -> str:
        return f"{self.log_dir}/{rule}.log"
