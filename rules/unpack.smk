# Stage a session that holds archives: unpack them into scratch and list every file to de-identify.
# (A session without archives has nothing to stage: anonymize_session lists and reads its files in place.)
rule unpack_archives:
    input:
        session=SESSION_INPUT,
    output:
        staged=temp(directory(STAGED)),
    params:
        limits=json.dumps(config["archives"]),
    log:
        f"{LOGS}/unpack_archives/{SESSION_LOG}",
    conda:
        "../environment.yml"
    shell:
        "unpack_archives.py --session {input.session:q} --staged {output.staged:q}"
        " --limits {params.limits:q} --log {log:q}"
