# Discovery and the paths every rule shares. Runs when the workflow is parsed, before any job.
import json
import os
import sys
import threading

from snakemake.exceptions import WorkflowError

from dicom_deid.keyfile import ensure_key
from dicom_deid.layout import REPORTS, data2bids_label, discover, session_output_dir, session_output_zip
from dicom_deid.settings import keep_problems, path_problems

problems = path_problems(config) + keep_problems(config)
if problems:
    raise WorkflowError("Configuration error:\n  " + "\n  ".join(problems))

INPUT = config["input_dir"]
OUTPUT = config["output_dir"]
WORK = config["work_dir"]
LOGS = config["log_dir"]
KEY = config["key_file"]
REPORTS_DIR = f"{OUTPUT}/{REPORTS}"
SUMMARY = f"{REPORTS_DIR}/summary.tsv"
HTML_REPORT = f"{REPORTS_DIR}/report.html"
SESSION_WORK = f"{WORK}/{{subject}}/{{subject}}_{{ses}}"
STAGED = f"{SESSION_WORK}/staged"
ANONYMIZED = f"{SESSION_WORK}/anonymized"
SESSION_LOG = "{subject}_{ses}.log"
SESSION_NAME = "{subject}_{ses}"
SESSION_INPUT = f"{INPUT}/{{subject}}/imaging/{{subject}}_{{ses}}"
DATA2BIDS = config["output_layout"] == "data2bids"
# What one session becomes in the output: a folder, or data2bids' zip.
SESSION_OUTPUT = (
    str(session_output_zip(OUTPUT, "{subject}", "{ses}"))
    if DATA2BIDS
    else directory(str(session_output_dir(OUTPUT, "{subject}", "{ses}")))
)

found = discover(INPUT, config["subjects"])
for warning in found.warnings:
    print(f"WARNING: {warning}", file=sys.stderr)
if found.errors:
    raise WorkflowError("Input layout error:\n  " + "\n  ".join(found.errors))
SESSIONS = {(s.subject, s.ses): s for s in found.sessions}

if ensure_key(KEY):
    print(f"Created a new key file {KEY} (mode 0600). Keep it safe and outside the output.", file=sys.stderr)


wildcard_constraints:
    subject="[^/]+",
    ses="[^/]+",


def session_of(wildcards):
    return SESSIONS[(wildcards.subject, wildcards.ses)]


def staged_if_archives(wildcards):
    # Only a session with archives has an unpack stage: one job fewer per session for plain folders.
    return STAGED.format(subject=wildcards.subject, ses=wildcards.ses) if session_of(wildcards).has_archives else []


def all_session_outputs():
    output_path = session_output_zip if DATA2BIDS else session_output_dir
    return [str(output_path(OUTPUT, s.subject, s.ses)) for s in SESSIONS.values()]


# data2bids sets PatientName to the session label; the mirrored layout keeps dicognito's fake name.
PATIENT_NAME = data2bids_label("{subject}", "{ses}") if DATA2BIDS else ""


# The options that shape the output, recorded in each report (the key never is).
SETTINGS = {k: config[k] for k in ("output_layout", "keep", "allow_keep_identifying", "private_tags")}

# The per-session rules run their scripts as shell commands: a `script:` job costs Snakemake a source lookup
# per job while planning (seconds at 5,000 sessions) and 0.1 s of start-up per job. The scripts start with
# `#!/usr/bin/env python3`; on the jobs' PATH come first the scripts, then the Python running Snakemake (as
# for `script:`). With --use-conda, Snakemake puts the rule's environment before both.
os.environ.update(
    PATH=os.pathsep.join([f"{workflow.basedir}/scripts", os.path.dirname(sys.executable), os.environ.get("PATH", "")])
)


def all_session_reports():
    return [f"{REPORTS_DIR}/{s.subject}/{s.name}.json" for s in SESSIONS.values()]


# Plain values and patterns where a function is not needed: Snakemake inspects every input function
# of every job, which at 5,000 sessions costs seconds.
# Each worker holds one file at a time; the largest enhanced multiframe files are a few hundred MB.
SESSION_MEM_MB = 500 + 400 * config["threads"]


def session_runtime(wildcards):
    # Minutes, at a pessimistic 20 files/s, plus start-up (for Slurm's time limit).
    return 10 + session_of(wildcards).file_count // 1200


def session_disk_mb(wildcards):
    # Unpacked archives plus the staged output: about two copies of the session. The three rules of a
    # session share one cluster job (group "session" in profiles/slurm), so this one declaration covers unpack too.
    return 100 + 3 * session_of(wildcards).size_bytes // 1024**2


# Snakemake's job-rate limiter (--max-jobs-per-timespan, 1 s at the finest) leaves a non-daemon timer
# behind after the last job, which holds the process for up to a second more on every run.
def cancel_rate_limit_timers():
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()
