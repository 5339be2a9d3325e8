"""Configuration errors stop the run before any job, naming the key."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydicom.data import get_testdata_file

from dicom_deid.config_checks import key_mismatch, numbers_from_text, path_problems
from dicom_deid.keyfile import ensure_key, key_check, read_seed
from dicom_deid.paths import Paths
from dicom_deid.records import SessionReport, read_record, write_record
from helpers import REPO, run_snakemake, sample_sessions

DEFAULTS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def config(**changes):
    return {**DEFAULTS, **changes}


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"output_dir": "input"}, "output_dir"),
        ({"output_dir": "input/derived"}, "output_dir"),
        ({"input_dir": "data/input", "output_dir": "data"}, "output_dir"),
        ({"work_dir": "output/scratch"}, "work_dir"),
        ({"key_file": "output/deid.key"}, "key_file"),
        ({"log_dir": "input/logs"}, "log_dir"),
    ],
)
def test_overlapping_folders_are_refused(changes, key):
    problems = path_problems(config(**changes))
    assert problems and problems[0].startswith(key)


def test_default_folders_are_fine():
    assert path_problems(DEFAULTS) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--config", "bogus_key=1"], "bogus_key"),
        (["--config", "threads=many"], "threads"),
        (["--config", "output_dir=input"], "output_dir"),
        (["--config", "input_dir=nowhere"], "input_dir nowhere: no such folder"),
        (["--config", "on_bad_file=ignore"], "on_bad_file"),
    ],
)
def test_config_errors_stop_before_any_job(tmp_path, arguments, message):
    (tmp_path / "input").mkdir()
    result = run_snakemake(tmp_path, *arguments, check=False)
    assert result.returncode != 0 and message in result.stdout
    assert "rule " not in result.stdout and not (tmp_path / "output").exists()
    # One line per problem, not Snakemake's dump of the whole schema and config (some 370 lines).
    assert "$schema" not in result.stdout and len(result.stdout.splitlines()) < 12, result.stdout


def test_nested_numbers_on_the_command_line_are_numbers(tmp_path):
    # Snakemake reads `archives={max_depth: 3}` as text; the README promises --config works for any key.
    (tmp_path / "input").mkdir()
    run_snakemake(tmp_path, "-n", "--config", "archives={max_depth: 3, max_total_gb: 0.5}")
    result = run_snakemake(tmp_path, "-n", "--config", "archives={max_depth: 0}", check=False)
    assert result.returncode != 0 and "max_depth" in result.stdout and "minimum" in result.stdout
    result = run_snakemake(tmp_path, "-n", "--config", "archives={max_depth: deep}", check=False)
    assert result.returncode != 0 and "'deep' is not of type 'integer'" in result.stdout


def test_only_text_that_spells_a_finite_number_becomes_one():
    given = {"a": "5", "b": "0.5", "c": "inf", "d": "nan", "e": "deep", "f": 3, "g": True}
    assert numbers_from_text(given) == {"a": 5, "b": 0.5, "c": "inf", "d": "nan", "e": "deep", "f": 3, "g": True}


def test_a_key_readable_by_others_stops_the_run_before_any_job(tmp_path):
    (tmp_path / "input" / "S" / "imaging" / "S_01").mkdir(parents=True)
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "input" / "S" / "imaging" / "S_01")
    ensure_key(tmp_path / "keys" / "deid.key")
    (tmp_path / "keys" / "deid.key").chmod(0o644)
    result = run_snakemake(tmp_path, check=False)
    assert result.returncode != 0 and "Key error:" in result.stdout and "chmod 600" in result.stdout
    assert "rule " not in result.stdout and not (tmp_path / "output").exists()


def test_a_rerun_that_forgets_the_output_layout_stops_before_any_job(tmp_path):
    # Sessions published as data2bids zips, then a run without output_layout=data2bids: it would publish every
    # session again, as folders beside the zips.
    (tmp_path / "input" / "S" / "imaging" / "S_01").mkdir(parents=True)
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "input" / "S" / "imaging" / "S_01")
    run_snakemake(tmp_path, "--config", "output_layout=data2bids")
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0 and "Output layout error:" in result.stdout
    assert "1 session(s) in output were published with output_layout data2bids" in result.stdout
    assert "rule " not in result.stdout
    run_snakemake(tmp_path, "-n", "--config", "output_layout=data2bids")  # the layout they were published with
    run_snakemake(tmp_path, "-n", "--config", "output_dir=output_mirror")  # a new output_dir


def test_a_site_config_naming_only_its_folders_runs_from_the_sites_own_folder(tmp_path):
    # A shared install on a cluster: `snakemake -s <install>/Snakefile --configfile site.yaml`, run in the
    # project's folder. The defaults come from the install; the site's file overrides only what it names.
    session = tmp_path / "scans" / "S" / "imaging" / "S_01"
    session.mkdir(parents=True)
    shutil.copy(get_testdata_file("MR_small.dcm"), session)
    (tmp_path / "site.yaml").write_text("input_dir: scans\noutput_dir: deidentified\n")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "site.yaml"]
    result = subprocess.run([*command, "-n", "--cores", "1"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "deidentified/S/imaging/S_01" in result.stdout
    assert (tmp_path / "keys" / "deid.key").is_file()  # the defaults' relative paths lie in the site's folder


def test_key_created_once_with_mode_0600(tmp_path):
    key = tmp_path / "keys" / "deid.key"
    assert ensure_key(key) is True
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    seed = read_seed(key)
    assert ensure_key(key) is False and read_seed(key) == seed


def test_a_key_of_raw_random_bytes_is_refused_with_how_to_make_one(tmp_path):
    key = tmp_path / "deid.key"
    key.write_bytes(bytes(range(128, 160)))  # head -c 32 /dev/urandom: not text
    key.chmod(0o600)
    with pytest.raises(ValueError, match="not text; a key is one line of text"):
        read_seed(key)


def test_a_key_check_in_the_published_reports_tells_another_key(tmp_path):
    report = Path(Paths.from_config(sample_sessions(tmp_path)[0]).session_report("SUBJ_0001", "01"))
    published = read_record(report, SessionReport)
    config = {"key_file": "keys/b.key", "output_dir": "out"}
    check_a, check_b = key_check("a" * 64), key_check("b" * 64)
    assert check_a != check_b and "a" * 16 not in check_a
    published.settings["key_check"] = check_a
    write_record(report, published)
    assert key_mismatch(config, [report], check_a) == []
    assert key_mismatch(config, [report], check_b)[0].startswith("key_file keys/b.key is not the key the 1 session")
    del published.settings["key_check"]  # a report written before the check: nothing to compare
    write_record(report, published)
    assert key_mismatch(config, [report], check_b) == []
    assert key_mismatch(config, [], check_b) == []


def test_key_readable_by_others_is_refused(tmp_path):
    key = tmp_path / "deid.key"
    ensure_key(key)
    key.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        read_seed(key)


def test_a_bad_file_fails_its_session_unless_told_otherwise():
    assert DEFAULTS["on_bad_file"] == "fail_session"
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    assert schema["properties"]["on_bad_file"]["enum"] == ["fail_session", "skip_file"]


def test_planning_imports_no_pydicom_without_a_keep_list():
    # What Snakemake's own process imports to plan (rules/common.smk): pydicom only for a keep list to check.
    code = (
        "import sys, yaml; from dicom_deid import config_checks, discovery, keyfile, paths, scheduling\n"
        f"config = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))\n"
        "assert config['keep'] == [] and config_checks.keep_problems(config) == []\n"
        "assert 'pydicom' not in sys.modules, 'pydicom imported'\n"
        "assert config_checks.keep_problems({**config, 'keep': ['StudyDat']})\n"
        "assert 'pydicom' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
