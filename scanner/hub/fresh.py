"""What a staff key reads comes from PassQR itself, and refreshes the mirror on its way.

A gate reads the mirror (its offline copy, at LAN speed, without PassQR's budget). Staff
look passes up to act on them (revoke a stolen pass by its code, fix a holder's name), so
they must see what PassQR holds now, a pass made there a minute ago included, not the
mirror of the last sync. Such a read uses the live share of the read budget, and its
answer goes into the mirror, so the gates see it at once. When PassQR cannot answer in
time, staff get the mirror's answer rather than none. Templates the mirror knows only by
id (a pass came first) are fetched with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import Response

from scanner.hub import mirror
from scanner.hub.upstream import Upstream, UpstreamError
from scanner.hub.worker import HubWorkers
from scanner.server.app import JSON

logger = logging.getLogger(__name__)

#: A staff read waits this long for the budget, and this long for PassQR's answer.
WAIT_S = 1.0
DEADLINE_S = 5.0


async def from_upstream(
    upstream: Upstream,
    workers: HubWorkers,
    path: str,
    query: Mapping[str, str],
    apply: Callable[[Any, Any, float], None],
) -> Response | None:
    """PassQR's answer to a GET (applied to the mirror when it is a 200), or None when
    PassQR cannot answer now (the caller answers from the mirror)."""
    read_at = time.time()
    try:
        reply = await upstream.send(
            "GET", path, live=True, max_wait_s=WAIT_S, query=query, deadline_s=DEADLINE_S
        )
    except UpstreamError as err:
        logger.info("Staff read of %s from the mirror: %s", path, err)
        return None
    if reply.status == 200:
        try:
            await workers.write(apply, reply.payload, read_at)
        except mirror.MirrorError as err:
            logger.warning("PassQR's answer to GET %s not mirrored: %s", path, err)
        await fill_templates(upstream, workers)
    return Response(reply.body, status_code=reply.status, media_type=JSON)


async def fill_templates(upstream: Upstream, workers: HubWorkers) -> None:
    """Fetch the templates the mirror knows only by id (a few at a time, live reads)."""
    ids = await workers.db.read(lambda store: mirror.placeholder_templates(store.connection))
    for template_id in ids:
        try:
            reply = await upstream.send(
                "GET",
                f"/templates/{template_id}",
                live=True,
                max_wait_s=WAIT_S,
                deadline_s=DEADLINE_S,
            )
        except UpstreamError:
            return  # the next sync fills it in
        if reply.status == 200:
            try:
                await workers.write(mirror.apply_template, reply.payload)
            except mirror.MirrorError as err:
                logger.warning("Template %s not mirrored: %s", template_id, err)


def one_pass(conn: Any, payload: Any, read_at: float) -> None:
    mirror.apply_pass(conn, payload, read_at)


def pass_page(conn: Any, payload: Any, read_at: float) -> None:
    mirror.apply_passes(conn, payload, read_at)


def one_template(conn: Any, payload: Any, read_at: float) -> None:
    mirror.apply_template(conn, payload)


def template_page(conn: Any, payload: Any, read_at: float) -> None:
    mirror.apply_templates(conn, payload)
