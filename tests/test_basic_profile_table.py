"""Our machine-readable Table E.1-1 (dicom_deid/data/basic_profile.tsv) against an independent copy.

The dicom-anonymizer package (requirements-test.txt; used by this test only) ships the Basic Profile column of the
same edition as Python lists of tags per action. Every tag must carry the same action in both, and neither may
list a tag the other lacks. Its copy has no option columns; those are checked for form only.
"""

from __future__ import annotations

import os
import re

import pytest
from pydicom.datadict import keyword_for_tag

from dicom_deid.profile_table import ACTIONS, OPTION_CODES, OPTIONS, PRIVATE_ROW_TAG, load_profile_table

REQUIRE_TOOLS = bool(os.environ.get("DEID_REQUIRE_TOOLS"))
TABLE = load_profile_table()
EDITION = TABLE.edition.removeprefix("DICOM PS3.15 ")  # "2024b"


def _their_actions() -> dict[str, str]:
    if REQUIRE_TOOLS:
        from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
    else:
        selector = pytest.importorskip("dicomanonymizer.dicomfields_selector")
        dicom_anonymization_database_selector = selector.dicom_anonymization_database_selector
    database = dicom_anonymization_database_selector(f"dicomfields_{EDITION}")
    actions: dict[str, str] = {}
    for category, tags in database.items():
        if category == "ALL_TAGS":
            continue
        code = category.removesuffix("_TAGS").replace("_STAR", "*").replace("_", "/")  # X_Z_U_STAR -> X/Z/U*
        for tag in tags:
            actions.setdefault(_written(tag), code)
    return actions


def _written(tag: tuple[int, ...]) -> str:
    """Their (group, element) or (group, element, group mask, element mask) as the standard writes the tag."""
    if len(tag) == 2:
        return f"({tag[0]:04X},{tag[1]:04X})"
    group, element, _group_mask, element_mask = tag
    return f"({group >> 8:02X}xx,{'xxxx' if element_mask == 0 else f'{element:04X}'})"


def test_the_table_names_its_edition():
    assert re.fullmatch(r"DICOM PS3\.15 \d{4}[a-e]", TABLE.edition)
    assert EDITION == "2024b"


def test_every_action_agrees_with_an_independent_copy_of_the_same_edition():
    ours = {row.tag: row.basic for row in TABLE.rows if row.tag != PRIVATE_ROW_TAG}
    theirs = _their_actions()
    assert len(ours) == len(theirs) == 620
    assert {
        tag: (ours.get(tag), theirs.get(tag)) for tag in ours.keys() | theirs.keys() if ours.get(tag) != theirs.get(tag)
    } == {}


def test_rows_are_well_formed():
    assert {row.basic for row in TABLE.rows} <= ACTIONS
    assert all(set(row.options) <= set(OPTIONS) for row in TABLE.rows)
    assert len({row.tag for row in TABLE.rows}) == len(TABLE.rows)
    for tag, row in TABLE.by_tag.items():
        assert row.keyword == (keyword_for_tag(tag) or "-"), row.tag


def test_the_private_row_and_the_options_offered_are_the_standards():
    private = next(row for row in TABLE.rows if row.tag == PRIVATE_ROW_TAG)
    assert private.basic == "X" and private.options == {"retain_safe_private": "C"}
    assert set(OPTION_CODES) <= set(OPTIONS)
    # Spot checks against the standard's text: an option's K retains, its C cleans.
    patient_age = TABLE.row_for(0x00101010)
    assert patient_age.action(set()) == "X" and patient_age.action({"retain_patient_characteristics"}) == "K"
    study_date = TABLE.row_for(0x00080020)
    assert study_date.action(set()) == "Z" and study_date.action({"retain_long_modified_dates"}) == "C"
    assert TABLE.row_for(0x60023000).keyword == "OverlayData"  # a repeating group
