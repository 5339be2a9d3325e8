"""Shared by the integration tests: run the real workflow on a tree in a temporary folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import threading
import warnings
import zipfile
from pathlib import Path

import pydicom

from dicom_deid.paths import Paths
from dicom_deid.records import (
    Check,
    Counts,
    Failure,
    PatientGroup,
    RepeatedInstance,
    SessionReport,
    SessionState,
    SessionStatus,
    SkippedFile,
    StudyGroup,
    Verdict,
    default_config,
    write_record,
)
from dicom_deid.verify import CHECKS

REPO = Path(__file__).resolve().parents[1]
STAMP = ".snakemake_timestamp"
# The workflow's defaults, from the one place they are set.
DEFAULT_CONFIG = default_config()


# Root reads any file whatever its mode: these drop that power, so a test run as root meets "permission denied"
# where a site's account would (a non-root account meets it anyway).
WITHOUT_ROOTS_READ_OVERRIDE = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-dac_override,-dac_read_search"]
    if os.geteuid() == 0
    else []
)


def run_snakemake(
    workdir: Path, *args: str, check: bool = True, as_site_account: bool = False
) -> subprocess.CompletedProcess:
    """Run the workflow with the default config, its relative folders resolved inside `workdir`; `as_site_account`:
    without root's power to read what its mode forbids."""
    command = [
        *(WITHOUT_ROOTS_READ_OVERRIDE if as_site_account else []),
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config" / "config.yaml"),
        "--directory", str(workdir),
        "--cores", "2",
        *args,
    ]  # fmt: skip
    # Snakemake writes its progress to stderr; one stream keeps messages in order.
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout}")
    return result


def checksums(root: Path) -> dict[str, str]:
    """Content hash and mode of every file below root, by relative path."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[path.relative_to(root).as_posix()] = f"{digest} {oct(path.stat().st_mode)}"
    return found


def output_files(session_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(session_dir).as_posix() for p in session_dir.rglob("*") if p.is_file() and p.name != STAMP
    )


def read(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path)


def elements(dataset: pydicom.Dataset):
    """Every element at every depth."""
    for element in dataset:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from elements(item)


def files_below(*roots: Path):
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                yield Path(dirpath) / name


def sessions_run(log: str, rule: str = "publish_session") -> set[str]:
    """Sessions (<SUBJECT>_<SES>) for which Snakemake's output shows `rule` being run."""
    found = set()
    in_rule = False  # job blocks are not always separated by blank lines: follow the "rule <name>:" lines
    for line in log.splitlines():
        started = re.match(r"\s*(local)?rule (\w+):$", line)
        if started:
            in_rule = started.group(2) == rule
        elif in_rule and "wildcards:" in line:
            values = dict(part.strip().split("=", 1) for part in line.split("wildcards:")[1].split(","))
            found.add(f"{values['subject']}_{values['ses']}")
            in_rule = False
    return found


def planted_values(tree) -> set[bytes]:
    """Every identifying value the example tree planted (PatientSex, one letter, aside)."""
    return {
        value.encode()
        for identity in tree.identities.values()
        for keyword, value in identity.values.items()
        if keyword != "PatientSex"
    }


def sample_sessions(workdir: Path) -> tuple[dict, list[tuple[str, str]]]:
    """Records as the session jobs leave them, for one session in each state, and the config that finds them.

    Long paths and reasons without spaces, as real exports have, so layout tests see the worst case.
    """
    config = {**DEFAULT_CONFIG, **{k: str(workdir / k) for k in ("output_dir", "work_dir", "log_dir")}}
    paths = Paths.from_config(config)
    deep = "EXPORT/PACS/ST0001/SE0004_T1_MPRAGE_SAG_1MM_ISO_ACCELERATED_GRAPPA2_NAVIGATED/IM00001234567890.dcm"

    def report(session: str, left_out: list[SkippedFile], patient_groups, studies) -> SessionReport:
        return SessionReport(
            session=session,
            state=SessionState.PUBLISHED_IN_PART if left_out else SessionState.PUBLISHED,
            counts=Counts(17, 15 - len(left_out), 6, "CT,MR,OT", 2, 0, 1, patients=len(patient_groups)),
            skipped=[SkippedFile("notes.txt", "notes.txt: not DICOM")],
            files_left_out=left_out,
            repaired_values_by_keyword={"StudyDate": 1},
            scrubbed={"PatientName in StudyDescription": 2, "PatientID in private (0029,xx20)": 1},
            private_elements={"kept": 12, "removed": 40},
            burned_in=[SkippedFile(deep, "secondary capture")] if len(patient_groups) > 1 else [],
            profile_actions={},
            checks={name: Check(Verdict.PASS) for name in CHECKS},
            verification="pass" if not left_out else "pass, 1 file(s) left out (see files_left_out)",
            settings={"output_layout": "mirror", "keep": [], "allow_keep_identifying": False, "private_tags": "safe"},
            versions={"dicognito": "0.19.0", "pydicom": "3.0.2"},
            patient_groups=list(patient_groups),
            repeated_instances=[RepeatedInstance("copy/IM0001.dcm", "ST0001/SE0001/IM0001.dcm", True)]
            if len(patient_groups) > 1
            else [],
            studies=list(studies),
        )

    # Two patients (a study exported into the wrong subject's folder), the first's studies a week apart, a file
    # copied twice, and a capture whose pixels may show text; the subject's other session is of a third patient,
    # and holds one of the first session's studies too.
    strays = [PatientGroup(12, 4, "ST0001/SE0001/IM0001.dcm", "a1", 2, 7), PatientGroup(3, 1, deep, "b2", 1, 0)]
    studies = [StudyGroup("d4", 10, 3, "ST0001/SE0001/IM0001.dcm"), StudyGroup("e5", 5, 2, deep)]
    write_record(Path(paths.session_report("SUBJ_0001", "01")), report("SUBJ_0001_01", [], strays, studies))
    left_out = [SkippedFile(deep, "failed verification: no_original_values_in_bytes")]
    one = [PatientGroup(14, 6, "ST0001/SE0001/IM0001.dcm", "c3")]
    copied = [StudyGroup("f6", 8, 4, "ST0001/SE0001/IM0001.dcm"), StudyGroup("e5", 6, 2, deep)]
    write_record(Path(paths.session_report("SUBJ_0001", "02")), report("SUBJ_0001_02", left_out, one, copied))
    failed = SessionStatus(
        session="SUBJ_0002_01",
        subject="SUBJ_0002",
        ses="01",
        state=SessionState.FAILED,
        stage="publish_session",
        failures=[Failure(deep, "an original identifying value is present", "no_original_values_in_bytes")],
    )
    write_record(Path(paths.status("SUBJ_0002", "01")), failed)
    sessions = [("SUBJ_0001", "01"), ("SUBJ_0001", "02"), ("SUBJ_0002", "01"), ("SUBJ_0003", "01")]  # last: not run
    return config, sessions


@contextlib.contextmanager
def pipe(path: Path):
    """A named pipe at `path` that code under test must not open: each open of it returns at once (and the test
    fails on what it read) instead of waiting for ever for a writer."""
    done = threading.Event()

    def writer() -> None:
        while not done.is_set():
            open(path, "wb").close()

    os.mkfifo(path)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # lets the writer's last open return
        thread.join(5)


def zip_with_raw_names(path: Path, entries: list[tuple[str | bytes, bytes]]) -> Path:
    """A zip of (name, bytes) entries; a name given as bytes is stored as those bytes without the UTF-8 flag (0x800),
    as Info-ZIP under LC_ALL=C, macOS Archive Utility and many Windows exporters write names. zipfile flags every
    non-ASCII name it writes, so such a name is written as an ASCII stand-in of its length and patched in after."""
    raw_names = {f"{i:~>{len(name)}}": name for i, (name, _) in enumerate(entries) if isinstance(name, bytes)}
    stand_ins = iter(raw_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(next(stand_ins) if isinstance(name, bytes) else name, data)
    data = path.read_bytes()
    for stand_in, raw in raw_names.items():
        assert data.count(stand_in.encode()) == 2  # in the local header and in the central directory
        data = data.replace(stand_in.encode(), raw)
    path.write_bytes(data)
    with zipfile.ZipFile(path) as written:  # as zipfile reads them: unflagged, so decoded as cp437
        flags = {info.filename: info.flag_bits for info in written.infolist()}
    assert all(flags[raw.decode("cp437")] & 0x800 == 0 for raw in raw_names.values())
    return path
