"""Workers per session job: sessions overlap when there are many, share the cores when there are few."""

from __future__ import annotations

import pytest

from dicom_deid.scheduling import workers_per_session


@pytest.mark.parametrize(
    ("threads", "cores", "to_do", "workers"),
    [
        (2, 2, 6, 1),  # 3 sessions per core: they overlap, one worker each
        (2, 2, 500, 1),
        (2, 2, 5, 2),  # fewer: one worker each would leave a core idle at the end
        (2, 2, 3, 2),
        (2, 2, 2, 1),  # both at once, a core each
        (2, 2, 1, 2),
        (2, 1, 1, 1),  # never more than the cores
        (8, 8, 2, 4),  # the cores shared out
        (2, 8, 2, 2),  # never more than `threads`
        (4, 8, 20, 4),
        (4, 8, 24, 1),
        (2, 2, 0, 2),  # nothing left to do (a rerun): whatever runs gets `threads`
    ],
)
def test_workers_per_session(threads, cores, to_do, workers):
    assert workers_per_session(threads, cores, to_do) == workers
