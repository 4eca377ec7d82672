"""Every method of the control socket, by name: the one table the server looks requests up in."""

from __future__ import annotations

from gmid.daemon.rpc import (
    challenges,
    deliver,
    documents,
    edit,
    events,
    portals,
    schedule,
    sessions,
    show,
    status,
)
from gmid.daemon.rpc.server import Handler

METHODS: dict[str, Handler] = {
    # the daemon
    "status": status.status,
    "mailboxes.list": status.mailboxes,
    "config.reload": status.reload,
    "documents.list": documents.documents_list,
    "documents.show": documents.documents_show,
    "documents.render": show.documents_render,
    "events.recent": events.events_recent,
    "subscribe": events.subscribe,
    # portals
    "portals.list": portals.portals_list,
    "portal.fetch": portals.portal_fetch,
    "portal.test_login": portals.portal_test_login,
    "portal.try": portals.portal_try,
    "portal.suggest": portals.portal_suggest,
    "connectors.list": portals.connectors_list,
    "schedule.preview": schedule.schedule_preview,
    # what portals wait for
    "challenges.list": challenges.challenges_list,
    "challenge.answer": challenges.challenge_answer,
    # changes of the config
    "portal.add": edit.portal_add,
    "portal.update": edit.portal_update,
    "portal.remove": edit.portal_remove,
    "company.add": edit.company_add,
    # a portal's saved session
    "portal.session.import": sessions.session_import,
    "portal.session.clear": sessions.session_clear,
    "portal.session.show": sessions.session_show,
    # delivery to where documents are used next
    "outbox.list": deliver.outbox_list,
    "deliver.queue": deliver.deliver_queue,
    "outbox.retry": deliver.outbox_retry,
    "deliveries.states": deliver.delivery_states,
}
