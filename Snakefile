# De-identify DICOM sessions laid out for data2bids: unpack, anonymize, strip, verify.
# Run: snakemake --cores N   (see README.md)
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The workflow's own package, for the imports in rules/common.smk.
sys.path.insert(0, workflow.basedir)


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "rules/common.smk"
include: "rules/unpack.smk"
include: "rules/anonymize.smk"
include: "rules/verify.smk"
include: "rules/summary.smk"


rule all:
    input:
        sessions=all_session_outputs(),
        summary=SUMMARY,
        html=HTML_REPORT,
    default_target: True


# cancel_rate_limit_timers (rules/common.smk): otherwise every run ends up to a second after its last job.
onsuccess:
    cancel_rate_limit_timers()


onerror:
    cancel_rate_limit_timers()
