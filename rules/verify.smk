# Gather the per-file checks, check the session as a whole; only a clean session enters the output.
rule verify_session:
    input:
        anonymized=ANONYMIZED,
        # Kept until the session is verified: skipped archive members are re-read from it.
        staged=staged_if_archives,
    output:
        session=SESSION_OUTPUT,
        report=f"{REPORTS_DIR}/{{subject}}/{{subject}}_{{ses}}.json",
    params:
        session=SESSION_NAME,
        settings=json.dumps(SETTINGS),
    log:
        f"{LOGS}/verify_session/{SESSION_LOG}",
    # Counts no core: it gathers JSON and renames a folder, so it runs while the next session is anonymized.
    threads: 0
    conda:
        "../environment.yml"
    shell:
        "verify_session.py --anonymized {input.anonymized:q}"
        " --output {output.session:q} --report {output.report:q} --session {params.session:q}"
        " --settings {params.settings:q} --log {log:q}"
