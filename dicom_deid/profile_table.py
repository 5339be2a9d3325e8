"""DICOM PS3.15 Table E.1-1, the Basic Application Level Confidentiality Profile, as data: read, never decided here.

The table lives in data/basic_profile.tsv (edition in its first line). Both the anonymizing side (basic_profile.py)
and the verifier (verify/files.py) read it through this module, which imports neither. Each row gives the
Basic Profile's action for one attribute and the action that replaces it under each option.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent / "data" / "basic_profile.tsv"

# The standard's option columns, in its order.
OPTIONS = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_long_full_dates",
    "retain_long_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)
COLUMNS = ("tag", "keyword", "name", "retired", "in_std_iod", "basic", *OPTIONS)
ACTIONS = frozenset({"X", "Z", "D", "U", "K", "C", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"})
OPTION_ACTIONS = frozenset({"K", "C"})

# The options this workflow offers (config basic_options), with their CID 7050 codes (PS3.16), scheme DCM.
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES = {
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_long_modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
}
# Repeating groups: (60xx,3000) stands for (6000,3000), (6002,3000), ... (601E,3000).
_REPEATING = re.compile(r"\(([0-9A-F]{2})xx,([0-9A-Fx]{4})\)")
_TAG = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)")
PRIVATE_ROW_TAG = "(gggg,eeee)"


@dataclass(frozen=True)
class ProfileRow:
    tag: str  # as the standard writes it: (0008,0050), (60xx,3000), (gggg,eeee)
    keyword: str
    name: str
    basic: str
    options: dict[str, str] = field(hash=False)  # option -> K or C, only where the option touches the attribute

    def action(self, enabled: frozenset[str] | set[str]) -> str:
        """The action under these options: an option's K (retain) wins over a C (clean), either over the basic."""
        chosen = {self.options[o] for o in enabled if o in self.options}
        return "K" if "K" in chosen else "C" if "C" in chosen else self.basic


@dataclass(frozen=True)
class ProfileTable:
    edition: str  # e.g. "DICOM PS3.15 2024b"
    rows: tuple[ProfileRow, ...]
    by_tag: dict[int, ProfileRow] = field(hash=False)
    by_group_prefix: dict[tuple[int, int | None], ProfileRow] = field(hash=False)  # (group >> 8, element or None)

    def row_for(self, tag: int) -> ProfileRow | None:
        """The row of a public tag, repeating groups (50xx, 60xx) included; private elements have their own row."""
        row = self.by_tag.get(int(tag))
        if row is not None:
            return row
        group, element = int(tag) >> 16, int(tag) & 0xFFFF
        if group & 0xFF00 not in (0x5000, 0x6000) or group % 2 or group & 0xFF > 0x1E:
            return None
        prefix = group >> 8
        return self.by_group_prefix.get((prefix, element)) or self.by_group_prefix.get((prefix, None))

    def __contains__(self, tag: int) -> bool:
        return self.row_for(tag) is not None


@functools.cache
def load_profile_table(path: Path | str = TABLE_PATH) -> ProfileTable:
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    edition = re.match(r"# (DICOM PS3\.15 \d{4}[a-e]), Table E\.1-1", lines[0])
    if edition is None:
        raise ValueError(f"{path}: the first line must name the edition, e.g. '# DICOM PS3.15 2024b, Table E.1-1'")
    body = [line for line in lines if line and not line.startswith("#")]
    if tuple(body[0].split("\t")) != COLUMNS:
        raise ValueError(f"{path}: header must be {', '.join(COLUMNS)} (tab-separated)")
    rows = tuple(_row(line.split("\t"), f"{path}:{number}") for number, line in enumerate(body[1:], start=2))
    by_tag, by_group = {}, {}
    for row in rows:
        if (match := _TAG.fullmatch(row.tag)) is not None:
            by_tag[int(match.group(1) + match.group(2), 16)] = row
        elif (match := _REPEATING.fullmatch(row.tag)) is not None:
            element = None if match.group(2) == "xxxx" else int(match.group(2), 16)
            by_group[(int(match.group(1), 16), element)] = row
        elif row.tag != PRIVATE_ROW_TAG:
            raise ValueError(f"{path}: tag {row.tag!r} is not (gggg,eeee), a repeating group or {PRIVATE_ROW_TAG}")
    return ProfileTable(edition.group(1), rows, by_tag, by_group)


def _row(fields: list[str], where: str) -> ProfileRow:
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)}")
    values = dict(zip(COLUMNS, fields, strict=True))
    if values["basic"] not in ACTIONS:
        raise ValueError(f"{where}: unknown action {values['basic']!r}")
    options = {option: values[option] for option in OPTIONS if values[option]}
    if not set(options.values()) <= OPTION_ACTIONS:
        raise ValueError(f"{where}: an option column holds something other than K or C")
    return ProfileRow(values["tag"], values["keyword"], values["name"], values["basic"], options)
