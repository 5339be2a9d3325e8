"""One place for each fact: the pins and the tag lists agree with their other copies."""

from __future__ import annotations

import re

import yaml

from dicom_deid import tags
from helpers import REPO


def pins(lines):
    return {m.group(1).lower(): m.group(2) for line in lines if (m := re.match(r"^\s*([\w.-]+)==(\S+)", line))}


def test_environment_yml_pins_match_requirements():
    requirements = pins(
        (REPO / "requirements.txt").read_text().splitlines()
        + (REPO / "requirements-slurm.txt").read_text().splitlines()
    )
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda_pins = pins(pip_section)
    assert conda_pins and all(requirements[name] == version for name, version in conda_pins.items())
    assert {"dicognito": "0.19.0", "pydicom": "3.0.2"}.items() <= requirements.items()


def test_tag_lists_match_the_specification_table():
    spec = REPO / "docs" / "tags.md"
    text = spec.read_text()
    replaced, removed = text.split("## Removed completely")
    removed = removed.split("## What this rule does not cover")[0]
    keywords = lambda part: {m for m in re.findall(r"^\| (\w+) \| \(", part, re.M)}  # noqa: E731
    assert keywords(replaced) == set(tags.REPLACED)
    assert keywords(removed) == set(tags.REMOVED)
