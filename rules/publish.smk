# Stage 3, publish (dicom_deid/stages/publish.py): the session checked as a whole; only a session that passes
# every check enters the output, in one step, with its report.
rule publish_session:
    input:
        anonymized=PATHS.anonymized(**S),
        # Kept until the session is published: skipped archive members are re-read from it.
        unpacked=unpacked_if_archives,
    output:
        session=(PATHS.session_output(**S) if PATHS.data2bids else directory(PATHS.session_output(**S))),
        report=PATHS.session_report(**S),
    log:
        PATHS.session_log("publish_session", **S),
    conda:
        "../environment.yml"
    # Counts no core: it gathers JSON and renames a folder, so it runs while the next session is anonymized.
    threads: 0
    params:
        session=SESSION_NAME,
        settings=json.dumps(SETTINGS),
        on_bad_file=config["on_bad_file"],
        # Written if the session fails, deleted once it is published; the reports read it.
        status=PATHS.status(**S),
    shell:
        "publish_session.py --anonymized {input.anonymized:q}"
        " --output {output.session:q} --report {output.report:q} --session {params.session:q}"
        " --settings {params.settings:q} --on-bad-file {params.on_bad_file:q}"
        " --log {log:q} --status {params.status:q}"
