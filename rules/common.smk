# Discovery, and the paths every rule shares (all built by dicom_deid.paths). Runs when the workflow is
# parsed, before any job.
import functools
import inspect
import json
import os
import sys
import threading

import snakemake.common
from snakemake.exceptions import WorkflowError

from dicom_deid.config_checks import (
    keep_problems,
    key_mismatch,
    key_problems,
    layout_problems,
    path_problems,
    profile_problems,
)
from dicom_deid.discovery import discover, gone_sessions, published_but_gone, published_reports
from dicom_deid.keyfile import ensure_key, key_check, read_seed
from dicom_deid.paths import Paths, data2bids_label
from dicom_deid.records import basic_options_in_use, private_tags_in_use
from dicom_deid.scheduling import job_mem_mb, workers_per_session

problems = path_problems(config) + keep_problems(config) + profile_problems(config)
if problems:
    raise WorkflowError("Configuration error:\n  " + "\n  ".join(problems))

PATHS = Paths.from_config(config)
KEY = config["key_file"]
# Snakemake patterns of the per-session paths.
S = {"subject": "{subject}", "ses": "{ses}"}
SESSION_NAME = "{subject}_{ses}"

found = discover(PATHS.input_dir, config["subjects"])
PUBLISHED = published_reports(PATHS)
# Published sessions whose folder is gone from the input: still in the output, so each run warns and the reports
# show them.
GONE = gone_sessions(PUBLISHED, found)
found.warnings += published_but_gone(PATHS, GONE)
for warning in found.warnings:
    print(f"WARNING: {warning}", file=sys.stderr)
if found.errors:
    raise WorkflowError("Input layout error:\n  " + "\n  ".join(found.errors))
SESSIONS = {(s.subject, s.ses): s for s in found.sessions}
key_errors = key_problems(config, len(PUBLISHED))
if key_errors:
    raise WorkflowError("Key error:\n  " + "\n  ".join(key_errors))

layout_errors = layout_problems(config, PUBLISHED)
if layout_errors:
    raise WorkflowError("Output layout error:\n  " + "\n  ".join(layout_errors))

if ensure_key(KEY):
    print(f"Created a new key file {KEY} (mode 0600). Keep it safe and outside the output.", file=sys.stderr)
try:  # every session job reads it: a key readable by others would otherwise fail each of them on its own
    KEY_CHECK = key_check(read_seed(KEY))
except (OSError, ValueError) as error:
    raise WorkflowError(f"Key error:\n  {error}")
key_errors = key_mismatch(config, PUBLISHED, KEY_CHECK)
if key_errors:
    raise WorkflowError("Key error:\n  " + "\n  ".join(key_errors))


wildcard_constraints:
    subject="[^/]+",
    ses="[^/]+",


def per_job(func):
    # Snakemake reads the signature of a rule's function for every job, with inspect.signature (5 % of a
    # 5,000-session dry run for these functions); it takes a ready one from this attribute if set (9.x:
    # snakemake.common.get_function_params). Without the attribute all works as before, only slower.
    attribute = getattr(snakemake.common, "FUNC_OVERWRITE_PARAMS_ATTR", None)
    if attribute:
        setattr(func, attribute, inspect.signature(func).parameters)
    return func


def session_of(wildcards):
    return SESSIONS[(wildcards.subject, wildcards.ses)]


@per_job
def session_fingerprint(wildcards):
    return session_of(wildcards).fingerprint


@per_job
def unpacked_if_archives(wildcards):
    # Only a session with archives has an unpack stage: one job fewer per session for plain folders.
    session = session_of(wildcards)
    return PATHS.unpacked(session.subject, session.ses) if session.has_archives else []


def every_session(path_of):
    return [path_of(s.subject, s.ses) for s in SESSIONS.values()]


# data2bids sets PatientName to the session label; the mirrored layout keeps dicognito's fake name.
PATIENT_NAME = data2bids_label(**S) if PATHS.data2bids else ""

# Profile basic: its options in use; private elements follow Retain Safe Private (the safe list) or go.
BASIC_OPTIONS = basic_options_in_use(config)
PRIVATE_TAGS = private_tags_in_use(config)

# The options that shape the output, recorded in each report; of the key, only a check that a later run's key
# is the same (config_checks.key_mismatch).
SETTINGS = {k: config[k] for k in ("output_layout", "keep", "allow_keep_identifying", "date_shift", "profile")}
SETTINGS.update(private_tags=PRIVATE_TAGS, basic_options=BASIC_OPTIONS, key_check=KEY_CHECK)

# The per-session rules run their scripts as shell commands: a `script:` job costs Snakemake a source lookup
# per job while planning (seconds at 5,000 sessions) and 0.1 s of start-up per job. The scripts start with
# `#!/usr/bin/env python3`; on the jobs' PATH come first the scripts, then the Python running Snakemake (as
# for `script:`). With --use-conda, Snakemake puts the rule's environment before both.
os.environ.update(
    PATH=os.pathsep.join([f"{workflow.basedir}/scripts", os.path.dirname(sys.executable), os.environ.get("PATH", "")])
)


def running_here():
    # Jobs run by this Snakemake process on this machine: not on a cluster, not inside a cluster job. Known only
    # once Snakemake has picked its executor, after parsing: hence functions below, evaluated per job.
    return workflow.local_exec and not (workflow.remote_exec or workflow.subprocess_exec)


@functools.cache
def workers_here():
    # Workers per session job (dicom_deid/scheduling.py): one when many sessions can overlap instead. On a
    # cluster, and when only planning, every job asks for `threads`, as before.
    if not running_here() or workflow.dryrun:
        return config["threads"]
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores given
        return config["threads"]
    to_do = sum(not os.path.exists(PATHS.session_report(*key)) for key in SESSIONS)
    return workers_per_session(config["threads"], cores, to_do)


@per_job
def session_threads(wildcards):
    return workers_here()


# With one worker per session job, largest sessions first (and their unpack jobs), so the sessions that run last,
# maybe alone, are small ones. Otherwise the order hardly matters.
SESSION_SIZE_RANK = {key: rank for rank, key in enumerate(sorted(SESSIONS, key=lambda key: SESSIONS[key].size_bytes))}


@per_job
def session_priority(wildcards):
    return SESSION_SIZE_RANK[(wildcards.subject, wildcards.ses)] if workers_here() == 1 else 0


@per_job
def session_mem_mb(wildcards, threads):
    # Each worker holds one file at a time, two copies of it at its peak; an enhanced multi-frame file can be
    # hundreds of MB. From the job's own workers: a job that runs one worker (many sessions at once) asks for less.
    return job_mem_mb(threads, session_of(wildcards).largest_file_bytes)


@per_job
def session_runtime(wildcards):
    # Minutes, at a pessimistic 20 files/s, plus start-up (for Slurm's time limit).
    return 10 + session_of(wildcards).file_count // 1200


@per_job
def session_disk_mb(wildcards):
    # Unpacked archives plus the de-identified copy: about two copies of the session. The three rules of a
    # session share one cluster job (group "session" in profiles/slurm), so this one declaration covers unpack too.
    return 100 + 3 * session_of(wildcards).size_bytes // 1024**2


# Snakemake's scheduler re-checks for free job slots with a threading.Timer of --max-jobs-per-timespan's
# span (1 s); the last one, left pending after the last job, holds the process up to a second on every run.
# Only timers started by Snakemake's scheduler module are cancelled; any other timer is left alone.
def cancel_scheduler_timers():
    for thread in threading.enumerate():
        function = getattr(thread, "function", None)
        if isinstance(thread, threading.Timer) and getattr(function, "__module__", "").startswith("snakemake."):
            thread.cancel()


# Every session in the input, as [subject, ses], also those of subjects left out by `subjects`: the reports list
# the whole dataset, and those with neither report nor status as not run.
SESSION_KEYS = [list(key) for key in found.session_keys()]
GONE_KEYS = [list(key) for key in GONE]


def build_reports_after_failure():
    # A failed session leaves the report rules (rules/report.smk) without their inputs: build the reports here,
    # from whatever finished. A failure here must not hide the job failure Snakemake is about to report.
    from dicom_deid.stages.report import write_reports

    try:
        sessions = [tuple(key) for key in SESSION_KEYS]
        write_reports(config, sessions, PATHS.summary, PATHS.html_report, GONE)
    except Exception as error:
        print(f"The reports could not be built: {type(error).__name__}: {error}", file=sys.stderr)
        return
    print(f"Reports of the sessions that finished: {PATHS.summary}, {PATHS.html_report}", file=sys.stderr)
