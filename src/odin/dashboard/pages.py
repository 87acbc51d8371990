"""The pages (Jobs, Job, Run, Cluster), their live fragments, streams and buttons.

A page is rendered whole once; the part that changes is a fragment that htmx
fetches again when the page's event stream says ``changed``. Each page embeds
the fingerprint it was rendered from, so a change between rendering and the
stream's start is not missed. Buttons post with the session's CSRF token and
act through the service exactly like the CLI.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import Response

from odin import config
from odin.dashboard import live, views
from odin.dashboard.app import Dashboard, cluster_facts
from odin.dashboard.auth import check_csrf
from odin.engine.identity import Caller
from odin.engine.views import run_view

Text = Annotated[str, Query(max_length=200)]


# -- what each page shows ---------------------------------------------------------


def jobs_model(dash: Dashboard, who: Caller, q: str, sort: str, desc: bool) -> dict[str, Any]:
    jobs = views.plain(dash.service.list_jobs(who))
    for job in jobs:
        recent = dash.service.runs(who, job["id"], config.DASHBOARD_SUCCESS_WINDOW)
        job["success"] = views.success_share(r.status for r in recent)
    shown = views.sort_jobs(views.filter_jobs(jobs, q), sort, desc)
    return {
        "jobs": shown,
        "total": len(jobs),
        "q": q,
        "sort": sort,
        "desc": desc,
        "sort_keys": views.SORT_KEYS,
        "user_is_root": who.is_root,
        "success_window": config.DASHBOARD_SUCCESS_WINDOW,
    }


def jobs_print(dash: Dashboard, who: Caller) -> str:
    return views.fingerprint(views.plain(dash.service.list_jobs(who)))


def job_model(dash: Dashboard, who: Caller, job_id: str) -> dict[str, Any]:
    job = dash.service.describe(who, job_id)
    runs = dash.service.runs(who, job_id, config.DASHBOARD_RUNS_SHOWN)
    runs = dash.service.with_full_records(who, job_id, runs)  # the state keeps summaries
    rows = views.plain(runs)
    alerts = views.plain(dash.service.alerts(who, job_id, config.ALERTS_KEPT_PER_JOB))
    return {
        "job": job,
        "runs": views.run_rows(rows),
        "alerts": views.alert_rows(alerts),
        "running": [r.id for r in runs if not r.status.finished],
        "charts": views.chart_data(rows),
        "conditions": views.record_history(rows, ("condition",)),
        "results": views.record_history(rows, ("result",)),
    }


def job_print(dash: Dashboard, who: Caller, job_id: str) -> str:
    job = views.plain(dash.service.describe(who, job_id))
    runs = dash.service.runs(who, job_id, config.DASHBOARD_RUNS_SHOWN)
    alerts = dash.service.alerts(who, job_id, config.ALERTS_KEPT_PER_JOB)
    return views.fingerprint(
        job,
        [(r.id, str(r.status), len(r.records)) for r in runs],
        [(a.id, str(a.state), a.attempts) for a in alerts],
    )


def cluster_model(dash: Dashboard, who: Caller, facts: Any) -> dict[str, Any]:
    per_node = dash.service.node.read(
        lambda state: Counter(r.node for r in state.runs.values() if who.may_see(r.owner_uid))
    )
    return {"nodes": dash.node_info(), "facts": facts, "per_node": per_node}


def cluster_print(dash: Dashboard, who: Caller) -> str:
    model = cluster_model(dash, who, None)
    return views.fingerprint(views.plain(model["nodes"]), dict(model["per_node"]))


# -- routes ---------------------------------------------------------------------------
#
# A page or fragment is built and rendered on a worker thread (with 1,500 jobs that takes
# tens of ms, and a job's runs are read from the store), so that the event loop, which also
# launches runs and serves the API, is never held by it. A stream's poll is shared by the
# streams of the same page and caller (``live.SharedPolls``).


def routes(app: FastAPI, dash: Dashboard) -> None:
    _jobs_routes(app, dash)
    _job_routes(app, dash)
    _run_routes(app, dash)
    _cluster_routes(app, dash)


def _poll(
    dash: Dashboard, page: tuple[str, ...], fingerprint: Callable[[Caller], str]
) -> Callable[[Caller], Awaitable[str]]:
    """A page stream's poll: one computation of ``fingerprint`` for every stream of the page
    and caller (keyed by the caller's uid: what a caller sees depends on it alone)."""
    return lambda who: dash.polls.get((*page, who.uid), lambda: fingerprint(who))


def _jobs_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/jobs")
    async def jobs_page(
        request: Request, q: Text = "", sort: Text = "name", desc: bool = False
    ) -> Response:
        who = dash.caller(request)

        def page() -> Response:
            model = jobs_model(dash, who, q, sort, desc)
            since = jobs_print(dash, who)
            return dash.render(request, "jobs.html", user=who, active="jobs", since=since, **model)

        return await asyncio.to_thread(page)

    @app.get("/jobs/table")
    async def jobs_table(
        request: Request, q: Text = "", sort: Text = "name", desc: bool = False
    ) -> Response:
        who = dash.caller(request)
        model = await asyncio.to_thread(jobs_model, dash, who, q, sort, desc)
        return await asyncio.to_thread(dash.render, request, "_jobs_table.html", **model)

    @app.get("/events/jobs")
    async def jobs_events(request: Request, since: Text = "") -> Response:
        dash.caller(request)
        compute = _poll(dash, ("jobs",), lambda who: jobs_print(dash, who))
        return live.stream(live.changes(request, dash.caller, compute, since))


def _job_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/jobs/{job_id}")
    async def job_page(request: Request, job_id: str) -> Response:
        who = dash.caller(request)

        def page() -> Response:
            model = job_model(dash, who, job_id)
            since = job_print(dash, who, job_id)
            return dash.render(request, "job.html", user=who, active="jobs", since=since, **model)

        return await asyncio.to_thread(page)

    @app.get("/jobs/{job_id}/live")
    async def job_fragment(request: Request, job_id: str) -> Response:
        who = dash.caller(request)
        model = await asyncio.to_thread(job_model, dash, who, job_id)
        return await asyncio.to_thread(dash.render, request, "_job_live.html", **model)

    @app.get("/events/jobs/{job_id}")
    async def job_events(request: Request, job_id: str, since: Text = "") -> Response:
        dash.caller(request)
        compute = _poll(dash, ("job", job_id), lambda who: job_print(dash, who, job_id))
        return live.stream(live.changes(request, dash.caller, compute, since))

    @app.post("/jobs/{job_id}/run")
    async def run_now(request: Request, job_id: str) -> Response:
        check_csrf(request, None)
        result = await dash.service.run_now(dash.caller(request), job_id)
        return dash.render(request, "_flash.html", message="Run planned:", run=result.run)

    @app.post("/jobs/{job_id}/pause")
    async def pause(request: Request, job_id: str) -> Response:
        return await _set_paused(request, dash, job_id, True)

    @app.post("/jobs/{job_id}/resume")
    async def resume(request: Request, job_id: str) -> Response:
        return await _set_paused(request, dash, job_id, False)

    @app.post("/jobs/{job_id}/pause-until")
    async def pause_until(
        request: Request, job_id: str, until: Annotated[str, Form(max_length=200)] = ""
    ) -> Response:
        """Pause the job until the moment typed in the form (as ``--pause-until``)."""
        check_csrf(request, None)
        job = await dash.service.modify(dash.caller(request), job_id, pause_until=until)
        message = f"Job {job.name} paused until {job.paused_until}: it resumes by itself then."
        return dash.render(request, "_flash.html", message=message, run=None)


async def _set_paused(request: Request, dash: Dashboard, job_id: str, paused: bool) -> Response:
    check_csrf(request, None)
    job = await dash.service.modify(dash.caller(request), job_id, paused=paused)
    word = "paused: it will not run on its schedule" if paused else "resumed"
    return dash.render(request, "_flash.html", message=f"Job {job.name} {word}.", run=None)


def _run_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/runs/{run_id}")
    async def run_page(request: Request, run_id: str) -> Response:
        who = dash.caller(request)
        output = await _output(dash, who, run_id)
        return await asyncio.to_thread(_run_page, dash, request, who, run_id, output)

    @app.get("/runs/{run_id}/output")
    async def run_output(request: Request, run_id: str) -> Response:
        who = dash.caller(request)
        output = await _output(dash, who, run_id)
        return await asyncio.to_thread(dash.render, request, "_output.html", output=output)

    @app.get("/events/runs/{run_id}")
    async def run_events(request: Request, run_id: str) -> Response:
        who = dash.caller(request)
        await asyncio.to_thread(dash.service.run, who, run_id)

        async def finished() -> bool:
            run = await asyncio.to_thread(dash.service.run, who, run_id)
            return run.status.finished

        return live.stream(live.output(request, dash.launcher.live, finished, run_id))


def _run_page(
    dash: Dashboard, request: Request, who: Caller, run_id: str, output: dict[str, Any]
) -> Response:
    """The Run page (blocking: the run may come from the store, its records from its node)."""
    run = dash.service.run(who, run_id)
    job = dash.service.describe(who, run.job_id)
    [view] = views.plain(dash.service.with_full_records(who, run.job_id, [run_view(run)], run.id))
    return dash.render(
        request,
        "run.html",
        user=who,
        active="jobs",
        job=job,
        run=views.run_rows([view])[0],
        records=views.record_history([view], ("watch", "condition", "result")),
        live=not run.status.finished,
        output=output,
    )


async def _output(dash: Dashboard, who: Caller, run_id: str) -> dict[str, Any]:
    answer = views.plain(await dash.service.output(who, run_id))
    return views.clip_output(answer, config.DASHBOARD_MAX_OUTPUT_SHOWN)


def _cluster_routes(app: FastAPI, dash: Dashboard) -> None:
    @app.get("/cluster")
    async def cluster_page(request: Request) -> Response:
        who = dash.caller(request)

        def page() -> Response:
            model = cluster_model(dash, who, cluster_facts(dash))
            since = cluster_print(dash, who)
            return dash.render(
                request, "cluster.html", user=who, active="cluster", since=since, **model
            )

        return await asyncio.to_thread(page)

    @app.get("/cluster/table")
    async def cluster_table(request: Request) -> Response:
        who = dash.caller(request)

        def table() -> Response:
            model = cluster_model(dash, who, cluster_facts(dash))
            return dash.render(request, "_cluster_table.html", **model)

        return await asyncio.to_thread(table)

    @app.get("/events/cluster")
    async def cluster_events(request: Request, since: Text = "") -> Response:
        dash.caller(request)
        compute = _poll(dash, ("cluster",), lambda who: cluster_print(dash, who))
        return live.stream(live.changes(request, dash.caller, compute, since))
