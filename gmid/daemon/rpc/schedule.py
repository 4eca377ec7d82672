"""The control method `schedule.preview`: the runs of the coming days and the quiet periods."""

from __future__ import annotations

import asyncio

from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services


async def schedule_preview(s: Services, params: Params, conn: Connection) -> p.SchedulePreview:
    """When each portal runs in the coming days (7 unless `days` says), and when none may."""
    days = check.whole_number(params, "days", 7, 1, 366)
    plan = await asyncio.to_thread(s.scheduler.preview, days)
    return p.SchedulePreview.from_dict(plan)
