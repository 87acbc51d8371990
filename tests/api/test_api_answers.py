"""The API's answers are typed, keep their JSON shape, and the OpenAPI document describes them.

No engine is needed: the app is built over stand-ins (the routes are only listed,
never called), and the answers are made from model values. The schema fuzz test
(``test_fuzz_api``) checks a real engine's answers against the same document.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from odin.api.app import create_app, loop_report, loop_router
from odin.cluster import commands as c
from odin.cluster.lease import LeaseState
from odin.cluster.model import (
    Alert,
    DeliveryState,
    Job,
    LinkOn,
    NodeInfo,
    Record,
    Run,
    RunReason,
    RunStatus,
)
from odin.cluster.state import StateMachine
from odin.dashboard.auth import LinkMinter, login_link_router
from odin.engine import views  # its TestSent is no test class: not imported by name
from odin.engine.loopwatch import Stalls
from odin.engine.node import EngineNode
from odin.engine.nodeauth import NodeAuth
from odin.engine.views import (
    Deployed,
    LinkAdded,
    NodeAdded,
    NodeRow,
    RecordRow,
    RunOutput,
    RunView,
    alert_view,
    iso,
    job_detail,
    job_summary,
    records_from,
    run_view,
)
from odin.jobs.fields import Catchup, Overlap
from odin.jobs.language import Language
from odin.jobs.notify import AlertEvent, Notify
from test_fuzz_api import undescribed

T0 = 1_800_000_000.0


def a_job(**changes: Any) -> Job:
    base = Job(
        id="a37b187f5930",
        owner_uid=1000,
        owner_gid=1000,
        owner="alice",
        name="stocks",
        description="prices",
        language=Language.PYTHON,
        filename="stocks.py",
        schedule="every 10 minutes",
        timezone="UTC",
        code="print(1)\n",
        yaml="id: a37b187f5930\n",
        code_sha="0" * 64,
        timeout_s=30.0,
        retries=2,
        overlap=Overlap.QUEUE,
        catchup=Catchup.ALL,
        env={"A": "1"},
        nodes=("n1",),
        created_at=T0,
        updated_at=T0 + 1,
    )
    return dataclasses.replace(base, **changes)


def a_run(**changes: Any) -> Run:
    base = Run(
        id="a37b187f5930@2027-01-15T08:00:00Z",
        job_id="a37b187f5930",
        owner_uid=1000,
        instant=T0,
        reason=RunReason.SCHEDULE,
        node="n1",
        planned_at=T0 - 1,
        status=RunStatus.SUCCEEDED,
        started_at=T0 + 0.01,
        finished_at=T0 + 1.5,
        exit_code=0,
        pid=4242,
        records=(
            Record(seq=1, ts=T0 + 0.5, type="watch", desc="rows", value=12),
            Record(seq=2, ts=T0 + 1.0, type="result", desc="done", value={"ok": True}),
        ),
        record_count=2,
    )
    return dataclasses.replace(base, **changes)


def an_alert(**changes: Any) -> Alert:
    base = Alert(
        id="a37b187f5930@2027-01-15T08:00:00Z:failure:0",
        key="a37b187f5930@2027-01-15T08:00:00Z:failure",
        job_id="a37b187f5930",
        owner_uid=1000,
        event=AlertEvent.FAILURE,
        to="https://hooks.example.org/odin?token=secret",
        run_id="a37b187f5930@2027-01-15T08:00:00Z",
        created_at=T0,
        attempts=1,
        next_at=T0 + 1,
        last_at=T0,
        outcome="HTTP 503",
    )
    return dataclasses.replace(base, **changes)


def json_of(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


# -- the JSON keeps the shape it had as dicts ---------------------------------------------


def test_a_job_row_and_detail_are_the_json_they_were() -> None:
    job, last = a_job(), a_run()
    links = {"ba9876543210": LinkOn.FAILURE}
    now = T0 + 7
    row = json_of(job_summary(job, links, last, now, members=("n1",)))
    assert row == {
        "id": job.id,
        "name": "stocks",
        "description": "prices",
        "language": "python",
        "schedule": "every 10 minutes",
        "schedule_text": row["schedule_text"],
        "timezone": "UTC",
        "owner": "alice",
        "owner_uid": 1000,
        "links": {"ba9876543210": "failure"},
        "next_run": row["next_run"],
        "not_planned": None,
        "last_status": "succeeded",
        "last_run": last.id,
        "paused": False,
        "failing": 0,
        "paused_until": None,
    }
    assert row["schedule_text"] and row["next_run"] > iso(now)
    detail = json_of(job_detail(job, links, last, now, members=("n1",)))
    assert list(detail)[: len(row)] == list(row)  # the row's keys first, in their order
    assert {k: detail[k] for k in row} == row
    assert {k: v for k, v in detail.items() if k not in row} == {
        "file": "stocks.py",
        "owner_gid": 1000,
        "timeout_s": 30.0,
        "retries": 2,
        "overlap": "queue",
        "catchup": "all",
        "env": {"A": "1"},
        "workdir": None,
        "nodes": ["n1"],
        "created_at": iso(T0),
        "updated_at": iso(T0 + 1),
        "version": 1,
        "code_sha256": "0" * 64,
        "next_runs": detail["next_runs"],
        "notify": [],
        "warn_after_s": None,
        "grace_s": None,
        "jitter_s": None,
        "spread_offset_s": None,
        "exceptions": [],
        "on_excluded": "skip",
        "skipped": [],
    }
    assert len(detail["next_runs"]) == 5 and detail["next_runs"][0] == row["next_run"]


def test_a_paused_job_with_no_run_has_nulls() -> None:
    row = json_of(job_summary(a_job(paused=True), {}, None, dt.datetime.now(dt.UTC)))
    assert (row["next_run"], row["last_status"], row["last_run"], row["links"]) == (
        None,
        None,
        None,
        {},
    )


def test_a_run_view_is_the_run_as_json_then_its_times_in_words() -> None:
    run = a_run()
    view = json_of(run_view(run))
    extra = {
        "instant_iso": iso(run.instant),
        "started_iso": iso(run.started_at),
        "finished_iso": iso(run.finished_at),
        "duration": run.duration,
        "lag": run.lag,
        "result_desc": "done",
    }
    assert view == {**json_of(run.to_dict()), **extra}
    assert list(view) == [*run.to_dict(), *extra]


def test_a_run_view_has_every_field_of_a_run() -> None:
    """A field added to Run must be added to RunView too (run_view passes them all)."""
    shown = [f.name for f in dataclasses.fields(RunView)]
    assert shown[: len(dataclasses.fields(Run))] == [f.name for f in dataclasses.fields(Run)]


def test_stats_rows_node_rows_and_outputs_keep_their_keys() -> None:
    record = a_run().records[1]
    row = RecordRow("r", record.seq, record.ts, record.type, record.desc, record.value)
    assert json_of(row) == {"run": "r", **json_of(record.to_dict())}
    node = NodeRow(
        name="n1",
        http="127.0.0.1:4201",
        raft="127.0.0.1:4202",
        role="leader",
        status="healthy",
        running=3,
        last_seen=T0,
        lease=LeaseState.HELD,
        self=True,
    )
    assert json_of(node) == {
        "name": "n1",
        "http": "127.0.0.1:4201",
        "raft": "127.0.0.1:4202",
        "role": "leader",
        "status": "healthy",
        "running": 3,
        "last_seen": T0,
        "lease": "held",
        "self": True,
        "waiting": 0,
        "behind": 0.0,
    }
    output = {"run": "r", "output": "hi\n", "bytes": 3, "dropped": 0, "tail_only": False}
    assert json_of(RunOutput.from_json(output)) == output
    assert RunOutput.from_json({"run": "r"}) is None and RunOutput.from_json(None) is None


def test_records_from_json_keeps_records_only() -> None:
    data = [r.to_dict() for r in a_run().records] + [{"seq": 3}, "junk"]
    assert records_from(data) == a_run().records
    assert records_from({"not": "a list"}) == ()


# -- the node's read interface ------------------------------------------------------------


def test_the_node_hands_out_copies_under_its_lock() -> None:
    node = EngineNode.__new__(EngineNode)  # its state and lock alone: no Raft log
    node.state, node.lock = StateMachine(), threading.RLock()
    job, other = a_job(), a_job(id="ba9876543210")
    for j in (job, other):
        node.state.apply(c.PutJob(j))
    node.state.apply(c.AddLink(job.id, other.id, "always"))
    node.state.apply(c.PlanRuns(runs=(a_run(status=RunStatus.PLANNED),), ledger={}))
    jobs, links = node.jobs(), node.links()
    jobs.clear()
    links[job.id][other.id] = LinkOn.FAILURE
    assert set(node.jobs()) == {job.id, other.id}
    assert node.links() == {job.id: {other.id: LinkOn.ALWAYS}}
    assert node.job(job.id) == job and node.job("000000000000") is None
    assert [r.id for r in node.active_runs()] == [a_run().id] == [r.id for r in node.runs()]
    assert [r.id for r in node.runs_of(job.id)] == [a_run().id] and node.runs_of(other.id) == []
    assert node.read(lambda state: len(state.jobs)) == 2
    assert orjson.loads(node.state_json())["jobs"][0]["id"] == job.id


# -- the OpenAPI document -------------------------------------------------------------------


def _openapi() -> dict[str, Any]:
    service: Any = SimpleNamespace(node=SimpleNamespace(name="n1"))
    admin: Any = SimpleNamespace(membership=SimpleNamespace(auth=NodeAuth("s" * 32)))
    app = create_app(service, SimpleNamespace(), admin)  # type: ignore[arg-type]
    app.include_router(loop_router(SimpleNamespace()))  # type: ignore[arg-type]
    app.include_router(login_link_router(LinkMinter("http://localhost:4200")))
    document: dict[str, Any] = app.openapi()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    ]


def test_the_openapi_document_describes_every_answer_and_error() -> None:
    document = _openapi()
    assert len(operations(document)) >= 27
    assert undescribed(document) == []
    # schemathesis reads OpenAPI 3.1's "prefixItems" (a tuple's schema) as an invalid
    # "items" array: answers hold pairs as plain arrays instead.
    assert "prefixItems" not in orjson.dumps(document).decode()
    assert not any("422" in op["responses"] for _, _, op in operations(document))  # 400 here


def test_the_fast_lists_match_their_published_schema() -> None:
    """``GET /v1/jobs``, ``/runs`` and ``/stats`` are made by orjson, not pydantic: their
    bytes must still be what the document says."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    document = _openapi()
    paths = document["paths"]
    run = a_run()
    record = run.records[0]
    lists = {
        "/v1/jobs": [
            job_summary(a_job(), {"ba9876543210": LinkOn.SUCCESS}, run, T0, members=("n1",)),
            job_summary(a_job(paused=True), {}, None, T0),
        ],
        "/v1/jobs/{job_id}/runs": [run_view(run), run_view(a_run(status=RunStatus.PLANNED))],
        "/v1/jobs/{job_id}/stats": [
            RecordRow(run.id, record.seq, record.ts, record.type, record.desc, record.value)
        ],
        "/v1/alerts": [alert_view(an_alert()), alert_view(an_alert(state=DeliveryState.SENT))],
        "/v1/jobs/{job_id}/notify/test": [
            views.TestSent("https://hooks.example.org/***", ok=True, outcome="HTTP 200")
        ],
    }
    for path, answer in lists.items():
        method = "post" if path.endswith("/test") else "get"
        schema = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        rooted = {**schema, "components": document["components"]}
        validator = jsonschema_rs.validator_for(rooted)
        assert validator.is_valid(orjson.loads(orjson.dumps(answer))), path
        assert not validator.is_valid([{"id": 1}]), path


def test_fastapi_and_orjson_write_an_answer_alike() -> None:
    """One answer goes out through pydantic (FastAPI's ``response_model``), a list of them
    through orjson: the same JSON either way."""
    answers = [
        job_detail(a_job(), {"ba9876543210": LinkOn.FAILURE}, a_run(), T0, members=("n1",)),
        run_view(a_run()),
        Deployed(job_detail(a_job(), {}, None, T0), updated=True),
        job_detail(
            a_job(notify=(Notify("https://h.example.org/x?key=1"),), grace_s=60.0), {}, None, T0
        ),
        NodeAdded(NodeInfo("n2", "127.0.0.1:4211", "127.0.0.1:4212", T0), started=False),
        LinkAdded("a37b187f5930", "ba9876543210", LinkOn.ALWAYS),
    ]
    for answer in answers:
        adapter: TypeAdapter[Any] = TypeAdapter(type(answer))
        by_pydantic = adapter.dump_json(adapter.validate_python(answer))
        assert orjson.loads(by_pydantic) == json_of(answer), type(answer).__name__


def test_the_loop_report_is_the_json_it_was() -> None:
    stalls = Stalls(0.2, 0.01, 60, (0.01, 0.1), (5, 9), 10, 0.5, ((1_800_000_000, 0.2),))
    report = loop_report(stalls)
    assert json_of(report) == stalls.to_dict()
    adapter: TypeAdapter[Any] = TypeAdapter(type(report))
    assert orjson.loads(adapter.dump_json(adapter.validate_python(report))) == stalls.to_dict()
