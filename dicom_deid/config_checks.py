"""Checks of the configuration that a JSON schema cannot express: how the folders relate."""

from __future__ import annotations

import math
import os
from pathlib import Path

from dicom_deid import tags
from dicom_deid.paths import Paths, session_of_record
from dicom_deid.records import RecordError, SessionReport, read_record


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def path_problems(config: dict) -> list[str]:
    """Every way the configured folders overlap dangerously, each naming its key."""
    input_dir = Path(config["input_dir"]).resolve()
    output_dir = Path(config["output_dir"]).resolve()
    problems = []
    if _inside(output_dir, input_dir) or _inside(input_dir, output_dir):
        problems.append(f"output_dir {config['output_dir']} must not be, contain or lie inside input_dir")
    for key in ("work_dir", "log_dir"):
        folder = Path(config[key]).resolve()
        if _inside(folder, input_dir) or _inside(input_dir, folder):
            problems.append(f"{key} {config[key]} must not be, contain or lie inside input_dir")
    if _inside(Path(config["work_dir"]).resolve(), output_dir):
        problems.append(f"work_dir {config['work_dir']} must not lie inside output_dir")
    for secret in ("key_file", "crosswalk_file"):
        if not config.get(secret):
            continue
        path = Path(config[secret]).resolve()
        for key in ("output_dir", "input_dir", "log_dir"):
            if _inside(path, Path(config[key]).resolve()):
                problems.append(f"{secret} {config[secret]} must not lie inside {key}")
    return problems


def profile_problems(config: dict) -> list[str]:
    """Profile basic decides private elements by its option Retain Safe Private: keeping all contradicts it."""
    if config["profile"] == "basic" and config["private_tags"] == "keep":
        return [
            "private_tags: keep is not allowed with profile: basic, which removes private elements "
            "(set basic_options.retain_safe_private: true to keep the safe list)"
        ]
    return []


def schema_problem(error: Exception) -> str:
    """What Snakemake's `validate` found, as one line naming the key: its own message prints the whole schema
    (some 370 lines for one misspelt key)."""
    found = error.__context__  # jsonschema's ValidationError, which Snakemake's error keeps only as text
    if not hasattr(found, "absolute_path"):
        return str(error)
    key = ".".join(str(part) for part in found.absolute_path)
    return f"{key}: {found.message}" if key else found.message


def numbers_from_text(values: dict) -> dict:
    """`values` with each text that spells a number made that number. Snakemake's --config reads a nested key's
    value as text (`archives={max_depth: 5}` gives "5"), which the schema would refuse as no integer."""

    def number(value):
        if isinstance(value, str):
            for kind in (int, float):
                try:
                    found = kind(value)
                except ValueError:
                    continue
                return found if math.isfinite(found) else value  # "inf", "nan": left for the schema to refuse
        return value

    return {key: number(value) for key, value in values.items()}


def keep_problems(config: dict) -> list[str]:
    """Keep-list entries that are no DICOM keyword, or that identify the patient without the override."""
    if not config["keep"]:
        return []
    # Imported here: this runs in Snakemake's own process, at every start (and in each cluster job), where
    # pydicom is needed for nothing else: its import cost each start 60-70 ms (CPU and wall) of about 0.9 s.
    from pydicom.datadict import dictionary_VR, keyword_dict

    problems = []
    override = "set allow_keep_identifying: true to keep it anyway"
    for keyword in config["keep"]:
        if keyword not in keyword_dict:
            problems.append(f"keep: {keyword} is not a DICOM attribute keyword")
        elif config["allow_keep_identifying"]:
            continue
        elif keyword in tags.KEEP_NEEDS_OVERRIDE:
            problems.append(f"keep: {keyword} identifies the patient; {override}")
        elif dictionary_VR(keyword_dict[keyword]) in tags.KEEP_NEEDS_OVERRIDE_VRS:
            problems.append(
                f"keep: {keyword} is a date: kept beside the dates moved by each subject's offset, it gives the "
                f"offset away, and with it the real PatientBirthDate; {override}"
            )
    return problems


def layout_problems(config: dict, reports: list[Path]) -> list[str]:
    """Sessions of output_dir published under the other output_layout (`reports`: discovery.published_reports).
    A rerun that forgot `output_layout=data2bids` would publish every session again beside its zip, as a folder."""
    other = "mirror" if config["output_layout"] == "data2bids" else "data2bids"
    elsewhere = Paths.from_config({**config, "output_layout": other})
    outputs = [elsewhere.session_output(*session_of_record(report)) for report in reports]
    found = [path for path in outputs if os.path.lexists(path)]
    if not found:
        return []
    return [
        f"output_layout {config['output_layout']}: {len(found)} session(s) in {config['output_dir']} were published "
        f"with output_layout {other} (e.g. {found[0]}); run with the layout they were published with, or give a "
        "new output_dir"
    ]


def key_problems(config: dict, published: int) -> list[str]:
    """A missing key where sessions were published with one: a new key would re-de-identify every session under
    new pseudonyms (the key is each session's input), and the data already released would no longer join."""
    if published == 0 or Path(config["key_file"]).exists():
        return []
    return [
        f"key_file {config['key_file']} is missing, but {published} session(s) in {config['output_dir']} were "
        "published with a key: restore that key from your backup (cp -p keeps its time, so nothing reruns); "
        "for a new, separate release, give a new key_file and a new output_dir"
    ]


def key_mismatch(config: dict, reports: list[Path], check: str) -> list[str]:
    """The key is another than the one the published sessions were made with (a key_file pointing at another
    project's key, or a new key where the old one was lost): every session would be de-identified again under new
    pseudonyms. One report is read: a release is made with one key. Reports older than the check pass."""
    if not reports:
        return []
    try:
        recorded = read_record(reports[0], SessionReport).settings.get("key_check", check)
    except (OSError, ValueError, TypeError, RecordError):
        return []  # a damaged report, or one of another format version, is the report stage's to name
    if recorded == check:
        return []
    return [
        f"key_file {config['key_file']} is not the key the {len(reports)} session(s) in {config['output_dir']} were "
        f"published with (see {reports[0]}): point key_file at that key; for a new, separate release, give a new "
        "output_dir"
    ]
