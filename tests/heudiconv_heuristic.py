"""A heudiconv heuristic for the vendor tree: every series into BIDS, named by what de-identification keeps.

A site's own heuristic keys on protocol names, which its scanners set; the vendor files carry whatever their
authors typed. This one names each run by series number (`acq-s12`) and sorts diffusion into dwi/ and all
else into anat/, so that the same session before and after de-identification gives the same file names.
Used by tests/downstream.py, never by the workflow.
"""


def create_key(template, outtype=("nii.gz",), annotation_classes=None):
    return template, outtype, annotation_classes


def _is_diffusion(seqinfo) -> bool:
    return "DIFFUSION" in seqinfo.image_type or seqinfo.sequence_name.lower().startswith("ep_b")


def infotodict(seqinfo):
    info = {}
    for series in seqinfo:
        number = series.series_id.split("-", 1)[0]
        folder, suffix = ("dwi", "dwi") if _is_diffusion(series) else ("anat", "T1w")
        key = create_key(f"sub-{{subject}}/{{session}}/{folder}/sub-{{subject}}_{{session}}_acq-s{number}_{suffix}")
        info.setdefault(key, []).append(series.series_id)
    return info
