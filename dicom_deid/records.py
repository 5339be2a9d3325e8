"""The records the stages hand each other, and the one versioned JSON codec they cross process boundaries with.

unpack    -> Sources                      (unpacked/sources.json)
anonymize -> Sources, list of FileResult  (anonymized/sources.json, anonymized/results.json)
publish   -> SessionReport                (reports/<SUBJECT>/<SUBJECT>_<SES>.json)
any stage -> SessionStatus                ({work_dir}/status/<SUBJECT>/<SUBJECT>_<SES>.json, when its job fails)
report    <- every SessionReport and SessionStatus

Each JSON file names its record and FORMAT_VERSION; a file written by another version is refused with a message
that says so, rather than failing later on a missing key. Nothing here imports pydicom or dicognito.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from dicom_deid.paths import printable

# Raise when a record's fields change meaning or name; scratch files of an older run are then remade.
FORMAT_VERSION = 2


class Outcome(str, Enum):
    """What happened to one input file."""

    WRITTEN = "written"  # de-identified and checked
    SKIPPED = "skipped"  # not DICOM: left out and reported
    DROPPED = "dropped"  # a DICOMDIR: left out and reported (it indexes patient identifiers)
    BAD = "bad"  # DICOM that cannot be de-identified: fails the session (on_bad_file: fail_session)
    LEFT_OUT = "left_out"  # on_bad_file: skip_file: bad, or failed a per-file check; never in the output


# config on_bad_file: a bad file fails its session (the default), or is left out and the rest published.
FAIL_SESSION, SKIP_FILE = "fail_session", "skip_file"
ON_BAD_FILE = (FAIL_SESSION, SKIP_FILE)


class Verdict(str, Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class Policy:
    """Everything that decides the output bytes besides the input and dicognito's defaults."""

    seed: str
    keep: tuple[str, ...]  # attributes left untouched
    private_tags: str  # "safe" (what conversion reads), "keep" or "remove"
    date_shift: str  # "per_subject": one offset per subject (from the key and PatientID); "global": dicognito's
    profile: str  # "minimal" (the 13 + 4 rule) or "basic" (PS3.15 Table E.1-1)
    basic_options: tuple[str, ...]  # the options of the basic profile in use (profile_table.OPTION_CODES)
    patient_name: str | None = None  # data2bids sets PatientName to the session label
    fast_path: bool = True  # leave elements no handler changes undecoded (tests compare with and without)


# The workflow's defaults, in the one place they are set.
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


@functools.cache
def default_config() -> dict:
    import yaml  # here, not at the top: the stages' workers never need it

    return yaml.safe_load(DEFAULT_CONFIG_FILE.read_text())


def basic_options_in_use(config: dict) -> list[str]:
    """The options of profile basic a run uses, sorted: none under another profile. A flag may be text (--config)."""
    if config["profile"] != "basic":
        return []
    return [key for key, on in sorted(config["basic_options"].items()) if str(on).lower() == "true"]


def private_tags_in_use(config: dict) -> str:
    """What happens to private elements: `private_tags`, or under profile basic its Retain Safe Private option
    (the safe list) or removal."""
    if config["profile"] != "basic":
        return config["private_tags"]
    return "safe" if "retain_safe_private" in basic_options_in_use(config) else "remove"


def default_policy(seed: str, **changes) -> Policy:
    """The policy of a run with the default configuration, with `changes` (for tests and the bench)."""
    config = default_config()
    defaults = {
        "seed": seed,
        "keep": tuple(config["keep"]),
        "private_tags": config["private_tags"],
        "date_shift": config["date_shift"],
        "profile": config["profile"],
        "basic_options": tuple(k for k, on in config["basic_options"].items() if on),
    }
    return Policy(**{**defaults, **changes})


@dataclass
class Sources:
    """Every file of a session to de-identify, as (output path relative to the session, path to read);
    sorted, so every later stage sees the files in the same order. `problems`: archives that could not be
    unpacked, reported with the session's bad files."""

    files: list[tuple[str, str]]
    problems: list[str] = field(default_factory=list)


@dataclass
class FileResult:
    """What happened to one file; `relpath` is its output path relative to the session folder."""

    relpath: str
    outcome: Outcome
    reason: str = ""
    repaired: dict[str, int] = field(default_factory=dict)  # malformed values emptied, by keyword
    # Known values replaced outside their own attributes, by "<attribute of the value> in <place>".
    scrubbed: dict[str, int] = field(default_factory=dict)
    private_kept: int = 0  # private elements left in the file, at every depth
    private_removed: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)  # verification, by check name
    modality: str = ""
    series: str = ""  # the pseudonymous SeriesInstanceUID, to count series
    patient: str = ""  # whose file it is: a keyed digest of PatientID (keyfile.patient_token), "" for none
    study: str = ""  # its study: a keyed digest of StudyInstanceUID (keyfile.study_token), "" for none
    instance: str = ""  # the pseudonymous SOPInstanceUID, to find files that repeat an instance
    study_day: int = 0  # the StudyDate as a day number moved by a keyed offset (anonymize.study_day); 0 for none
    burned_in: str = ""  # why the pixels may show identifying text (dicomfile.burned_in_text_risk), or ""
    profile_actions: dict[str, int] = field(default_factory=dict)  # profile basic: attributes per action X Z D K C U
    # Original and new PatientID and StudyInstanceUID, and the date offset in days, for the crosswalk; never
    # written to results.json.
    crosswalk: tuple[str, str, str, str, str] | None = None
    # The file's known original values, each with what replaced it (scrub.replacements), that its worker had not
    # handed on before: the session's files that were not written are named with them. Never written to
    # results.json.
    name_pairs: dict[str, tuple[str, str]] | None = None
    # Its path below the input session folder where that differs from relpath: a file or folder name held a known
    # value (storescp names files after their SOP Instance UID), replaced in relpath. Scratch only, as sources.json.
    source_relpath: str = ""

    @property
    def source(self) -> str:
        """The path below the input session folder this result accounts for."""
        return self.source_relpath or self.relpath

    def failure(self) -> Failure:
        """This file as a line of its session's error: its path, and its reason without the path in front."""
        return Failure(self.relpath, self.reason.removeprefix(f"{self.relpath}: "))


@dataclass
class Check:
    result: Verdict
    failures: list[str] = field(default_factory=list)


@dataclass
class Counts:
    input_files: int
    instances_written: int
    series: int
    modalities: str  # comma-separated, sorted
    skipped_non_dicom: int
    dropped_dicomdir: int
    values_repaired: int
    patients: int = 0  # distinct PatientIDs among the files published (files without one not counted)


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class PatientGroup:
    """The published files of one patient of a session, found by its first file; no DICOM value."""

    files: int
    series: int
    first_file: str
    # A digest of the PatientID keyed with the key (keyfile.patient_token): equal for the same patient in any
    # session of this key, so the reports can match patients to subjects; without the key it tells nothing.
    patient: str = ""
    # The days its studies lie on (files with a StudyDate), and the days from the first to the last: a session is
    # one visit, so more than one day is two visits in one session folder. Distances only, never a date.
    study_days: int = 0
    span_days: int = 0


@dataclass
class StudyGroup:
    """The published files of one study of a session, found by its first file; no DICOM value."""

    # A digest of the StudyInstanceUID keyed with the key (keyfile.study_token): equal in every session of this
    # key, so the reports find a study published in two sessions; without the key it tells nothing.
    study: str
    files: int
    series: int
    first_file: str


@dataclass
class RepeatedInstance:
    """A published file holding the same SOP instance as another of its session (an export copied twice)."""

    path: str
    same_as: str  # the first file of that instance, by path
    identical: bool  # the two published files hold the same bytes


@dataclass
class CaseClash:
    """A published file whose path differs from another's of its session only in case: where names ignore case
    (Windows, macOS), copying or unzipping the session there makes one overwrite the other."""

    path: str
    same_as: str  # the first of those paths, in path order


class SessionState(str, Enum):
    PUBLISHED = "published"
    PUBLISHED_IN_PART = "published_in_part"  # on_bad_file: skip_file left files out
    FAILED = "failed"


@dataclass
class SessionReport:
    """One published session, as the reports show it; names files by output path and holds no DICOM value."""

    session: str
    state: SessionState  # published, or published in part
    counts: Counts
    skipped: list[SkippedFile]
    files_left_out: list[SkippedFile]  # on_bad_file: skip_file; each file's reason names no value
    repaired_values_by_keyword: dict[str, int]
    # Known values replaced outside their own attributes, by "<attribute of the value> in <place>".
    scrubbed: dict[str, int]
    private_elements: dict[str, int]  # {"kept": n, "removed": n}, at every depth of every file
    # Published files whose pixels may show identifying text (profile minimal; basic holds them back), and why.
    burned_in: list[SkippedFile]
    profile_actions: dict[str, int]  # profile basic: attributes of Table E.1-1 per action, summed over files
    checks: dict[str, Check]  # of the files published
    verification: str  # "pass", or "pass, N file(s) left out ..." for a session published in part
    settings: dict  # the options that shaped the output; never the key
    versions: dict[str, str]
    # Each patient (distinct PatientID) of the files published, largest first; more than one: a study exported
    # into the wrong subject's folder. Empty in reports written before it was added.
    patient_groups: list[PatientGroup] = field(default_factory=list)
    repeated_instances: list[RepeatedInstance] = field(default_factory=list)
    # Each study (distinct StudyInstanceUID) of the files published, in path order of their first files. Empty in
    # reports written before it was added, whose sessions the check across sessions does not see.
    studies: list[StudyGroup] = field(default_factory=list)
    case_clashes: list[CaseClash] = field(default_factory=list)


@dataclass
class Failure:
    """Why a session failed, for one file: `path` inside the session (or an archive label; empty for the whole
    session), the verification `check` that failed (empty for a file that cannot be read or de-identified), and
    `reason`, which never quotes a DICOM value."""

    path: str
    reason: str
    check: str = ""

    def line(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"[{self.check}] {where}{self.reason}" if self.check else f"{where}{self.reason}"


@dataclass
class SessionStatus:
    """The outcome of a session whose job failed, kept outside the output so the reports can show it.

    Written by the failing job just before it exits; deleted when the session is published."""

    session: str
    subject: str
    ses: str
    state: SessionState
    stage: str  # the rule that failed
    failures: list[Failure]
    files_left_out: list[SkippedFile] = field(default_factory=list)


def split_message(message: str) -> tuple[str, str]:
    """(path, reason) of a message of the form "<path>: <reason>", as the verifier, the DICOM reader and the
    archive unpacker write them; a message without a path gives ("", message)."""
    path, separator, reason = message.partition(": ")
    return (path, reason) if separator else ("", message)


def bad_files(sources: Sources, results: list[FileResult]) -> list[Failure]:
    """Archives that could not be unpacked and files that could not be read or de-identified, by path."""
    failures = [Failure(*split_message(problem)) for problem in sources.problems]
    for result in results:
        if result.outcome is Outcome.BAD:
            failures.append(result.failure())
    return failures


class RecordError(Exception):
    """A record file of another format version, or not the record expected."""


def to_json(record) -> dict:
    """A dataclass as plain JSON values, with its name and the format version."""
    return {"record": type(record).__name__, "version": FORMAT_VERSION, **_plain(record)}


def from_json(cls, data: dict, source: str = "record"):
    found = (data.get("record"), data.get("version"))
    if found != (cls.__name__, FORMAT_VERSION):
        raise RecordError(
            f"{source}: expected a {cls.__name__} record of format version {FORMAT_VERSION}, found {found[0]} "
            f"version {found[1]} (written by another version of the workflow; rerun the session)"
        )
    return _build(cls, {k: v for k, v in data.items() if k not in ("record", "version")})


def write_record(path: Path, record) -> None:
    _write_json(path, to_json(record))


def write_report(path: Path, record) -> None:
    """A record for people to read (a session's report, a failed session's status), every path in it printable.

    Scratch records (sources, results) keep paths as Python holds them: the next stage opens those files."""
    _write_json(path, _printable(to_json(record)))


def write_records(path: Path, records: list) -> None:
    """A list of records of one kind, e.g. every FileResult of a session."""
    _write_json(path, {"records": [to_json(r) for r in records]})


def read_record(path: Path, cls):
    return from_json(cls, json.loads(Path(path).read_text()), str(path))


def read_records(path: Path, cls) -> list:
    return [from_json(cls, item, str(path)) for item in json.loads(Path(path).read_text())["records"]]


def _write_json(path: Path, data) -> None:
    write_text_atomically(Path(path), json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """Written beside its final name and renamed: a reader never sees half a file, and a failed write leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _printable(value):
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _build(kind, value):
    """The inverse of _plain, guided by the type annotations of the record classes above."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if value is None:
        return None
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        # A field missing from the file takes its default: one added later reads from records written before it.
        fields = [f for f in dataclasses.fields(kind) if f.init and f.name in value]
        return kind(**{f.name: _build(hints[f.name], value[f.name]) for f in fields})
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if origin in (typing.Union, types.UnionType):
        return _build(next(a for a in args if a is not type(None)), value)
    if origin is list:
        return [_build(args[0], item) for item in value]
    if origin is tuple:
        return tuple(_build(a, item) for a, item in zip(args, value, strict=True))
    if origin is dict:
        return {key: _build(args[1], item) for key, item in value.items()}
    return value
