# De-identify DICOM sessions laid out for data2bids, one session at a time through four stages:
# unpack (rules/unpack.smk) -> anonymize (rules/anonymize.smk) -> publish (rules/publish.smk) -> report (rules/report.smk).
# Run: snakemake --cores N   (see README.md)
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The workflow's own package, for the imports in rules/common.smk.
sys.path.insert(0, workflow.basedir)


# The defaults, found beside this Snakefile also when it runs from another folder (`snakemake -s`, a shared
# install on a cluster); a user's --configfile or --config overrides any key.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


from dicom_deid.config_checks import numbers_from_text, schema_problem

# --config "archives={max_depth: 3}" gives text; anything else is left for the schema to name.
if isinstance(config.get("archives"), dict):
    config["archives"] = numbers_from_text(config["archives"])


try:
    validate(config, "config/schema.yaml")
except WorkflowError as error:
    raise WorkflowError(f"Configuration error:\n  {schema_problem(error)}") from None


include: "rules/common.smk"
include: "rules/unpack.smk"
include: "rules/anonymize.smk"
include: "rules/publish.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        sessions=every_session(PATHS.session_output),
        summary=PATHS.summary,
        html=PATHS.html_report,


# cancel_scheduler_timers (rules/common.smk): otherwise every run ends up to a second after its last job.
onsuccess:
    cancel_scheduler_timers()


# A job failed (with --keep-going, after every other job finished): the reports still show every session.
onerror:
    cancel_scheduler_timers()
    build_reports_after_failure()
