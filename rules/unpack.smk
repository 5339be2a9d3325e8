# Stage 1, unpack (dicom_deid/stages/unpack.py): a session that holds archives has them unpacked into
# scratch, and every file to de-identify listed. A session without archives has no such job.
rule unpack_archives:
    input:
        session=PATHS.session_input(**S),
    output:
        unpacked=temp(directory(PATHS.unpacked(**S))),
    log:
        PATHS.session_log("unpack_archives", **S),
    priority: session_priority  # as its session's anonymize job
    conda:
        "../environment.yml"
    params:
        limits=json.dumps(config["archives"]),
        status=PATHS.status(**S),  # written if the job fails, for the reports
    shell:
        "unpack_archives.py --session {input.session:q} --unpacked {output.unpacked:q}"
        " --limits {params.limits:q} --log {log:q} --status {params.status:q}"
