"""A replicated ``Job`` value for unit tests, the fields a test does not care about filled in."""

from __future__ import annotations

import dataclasses

from odin.cluster.model import Job
from odin.jobs.language import Language

T0 = 1_800_000_000.0  # a fixed instant, divisible by 2 and 10


def a_job(job_id: str = "aaaaaaaaaaaa", **changes: object) -> Job:
    """Alice's Python job ``job_id``, every 10 seconds in UTC, with ``changes`` applied."""
    base = Job(
        id=job_id,
        owner_uid=1000,
        owner_gid=1000,
        owner="alice",
        name="n",
        description="",
        language=Language.PYTHON,
        filename="n.py",
        schedule="every 10 seconds",
        timezone="UTC",
        code="print(1)",
        yaml="",
        code_sha="x",
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
