# Anonymize every staged file with dicognito, strip the removed tags, and check each file as written.
rule anonymize_session:
    input:
        session=SESSION_INPUT,
        staged=staged_if_archives,
        key=KEY,
    output:
        anonymized=temp(directory(ANONYMIZED)),
    params:
        # Reruns the session when any file below it changes (the folder's own mtime would not tell).
        fingerprint=lambda w: session_of(w).fingerprint,
        session=SESSION_NAME,
        keep=json.dumps(config["keep"]),
        private_tags=config["private_tags"],
        patient_name=PATIENT_NAME,
        crosswalk_file=config["crosswalk_file"],
    log:
        f"{LOGS}/anonymize_session/{SESSION_LOG}",
    threads: config["threads"]
    resources:
        mem_mb=SESSION_MEM_MB,
        runtime=session_runtime,
        disk_mb=session_disk_mb,
    conda:
        "../environment.yml"
    shell:
        "anonymize_session.py --session-dir {input.session:q} --staged={input.staged:q} --key {input.key:q}"
        " --anonymized {output.anonymized:q} --workers {threads} --session {params.session:q}"
        " --keep {params.keep:q} --private-tags {params.private_tags:q} --patient-name={params.patient_name:q}"
        " --crosswalk-file={params.crosswalk_file:q} --log {log:q}"
