# Stage 2, anonymize (dicom_deid/stages/anonymize.py): every file de-identified with dicognito, the removed
# attributes stripped, and each file checked as written, into scratch.
rule anonymize_session:
    input:
        session=PATHS.session_input(**S),
        unpacked=unpacked_if_archives,
        key=KEY,
    output:
        anonymized=temp(directory(PATHS.anonymized(**S))),
    log:
        PATHS.session_log("anonymize_session", **S),
    priority: session_priority
    conda:
        "../environment.yml"
    threads: session_threads
    resources:
        mem_mb=session_mem_mb,
        runtime=session_runtime,
        disk_mb=session_disk_mb,
    params:
        # Reruns the session when any file below it changes (the folder's own mtime would not tell).
        fingerprint=session_fingerprint,
        session=SESSION_NAME,
        keep=json.dumps(config["keep"]),
        private_tags=PRIVATE_TAGS,
        date_shift=config["date_shift"],
        profile=config["profile"],
        basic_options=json.dumps(BASIC_OPTIONS),
        patient_name=PATIENT_NAME,
        crosswalk_file=config["crosswalk_file"],
        on_bad_file=config["on_bad_file"],
        # Not an output: a failed job's outputs are deleted, and this records why it failed (for the reports).
        status=PATHS.status(**S),
    shell:
        "anonymize_session.py --session-dir {input.session:q} --unpacked={input.unpacked:q} --key {input.key:q}"
        " --anonymized {output.anonymized:q} --workers {threads} --session {params.session:q}"
        " --keep {params.keep:q} --private-tags {params.private_tags:q} --date-shift {params.date_shift}"
        " --profile {params.profile} --basic-options {params.basic_options:q} --patient-name={params.patient_name:q}"
        " --crosswalk-file={params.crosswalk_file:q} --on-bad-file {params.on_bad_file:q}"
        " --log {log:q} --status {params.status:q}"
