"""Named calendars over HTTP (``odin calendar``): ``/v1/calendars`` on the socket API.

Each route acts for the caller the kernel names (SO_PEERCRED), on their own calendars; the
work is ``odin.engine.calendar_service``'s.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field

from odin import config
from odin.api.app import CallerDep, _json
from odin.engine.calendar_service import (
    CalendarAdded,
    CalendarDetail,
    CalendarRemoved,
    CalendarService,
    CalendarView,
)

NameParam = Annotated[str, Path(max_length=64)]


class CalendarBody(BaseModel):
    yaml: str = Field(max_length=config.MAX_YAML_BYTES)
    source: str = Field(default="", max_length=config.MAX_PATH_CHARS)  # its file, for messages


def calendar_router(calendars: CalendarService) -> APIRouter:
    """The calendar endpoints, over ``calendars``."""
    router = APIRouter(prefix="/v1/calendars", tags=["calendars"])

    @router.post("")
    async def add_calendar(who: CallerDep, body: CalendarBody) -> CalendarAdded:
        """Add a calendar from its file, or replace the caller's calendar of that name (the
        jobs that name it are planned again)."""
        return await calendars.add(who, body.yaml, body.source)

    @router.get("", response_model=list[CalendarView])
    async def list_calendars(who: CallerDep) -> Response:
        return _json(await asyncio.to_thread(calendars.list, who))

    @router.get("/{name}")
    async def describe_calendar(who: CallerDep, name: NameParam) -> CalendarDetail:
        return await asyncio.to_thread(calendars.describe, who, name)

    @router.delete("/{name}")
    async def remove_calendar(who: CallerDep, name: NameParam) -> CalendarRemoved:
        """Remove a calendar; refused (409) while a job of the caller names it."""
        return await calendars.remove(who, name)

    return router
