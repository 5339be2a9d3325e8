# Stage 4, report (dicom_deid/stages/report.py): one row per session, and a page a person reads, both from
# the session reports. Seconds of work: on a cluster they run on the submitting machine instead of waiting
# in the queue. `script:`, not a shell command: thousands of report paths would not fit one command line.
localrules:
    dataset_summary,
    html_report,


rule dataset_summary:
    input:
        reports=every_session(PATHS.session_report),
    output:
        summary=PATHS.summary,
    log:
        PATHS.log("dataset_summary"),
    conda:
        "../environment.yml"
    script:
        "../scripts/dataset_summary.py"


rule html_report:
    input:
        reports=every_session(PATHS.session_report),
    output:
        html=PATHS.html_report,
    params:
        config=config,
    log:
        PATHS.log("html_report"),
    conda:
        "../environment.yml"
    script:
        "../scripts/html_report.py"
