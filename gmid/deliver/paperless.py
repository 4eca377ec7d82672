"""paperless-ngx as a destination: each document posted through its REST API, exactly once.

A delivery finds (or creates, by name) the correspondent (the document's company), the document
type, the tags and the custom fields for the invoice number and amount, posts the file with
`post_document`, and follows paperless's consume task to its end. paperless identifies a file
by its SHA-256 checksum, which is the archive's own: a document paperless already has is found
by it before anything is posted, and so is one whose task is still running (by its file name),
so a retry after a crash between the post and the task's end makes no second copy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yaml.nodes import Node

from gmid.config.reader import Reader, is_null
from gmid.config.secretref import SecretRef, parse_secret
from gmid.deliver.base import Delivery, DeliveryFailed
from gmid.deliver.jsonapi import JsonApi, Refused
from gmid.deliver.template import fill, template_error
from gmid.errors import SecretError, quoted
from gmid.net import is_loopback

logger = logging.getLogger(__name__)

KEYS = (
    "url",
    "token",
    "user",
    "password",
    "ca_bundle",
    "allow_http",
    "document_type",
    "tags",
    "number_field",
    "amount_field",
    "title",
)
DEFAULT_TITLE = "{company} {number}"
POLL_FIRST, POLL_MAX = 0.2, 1.0  # seconds between looks at a running task
UNCERTAIN_WAIT = 15.0  # seconds an upload cut off by its deadline may still arrive


@dataclass(frozen=True)
class Options:
    """A paperless destination's options from the config."""

    url: str
    token: SecretRef | None = None
    user: str | None = None
    password: SecretRef | None = None
    ca_bundle: Path | None = None
    document_type: str | None = None
    tags: tuple[str, ...] = ()
    number_field: str | None = "Invoice number"
    amount_field: str | None = "Amount"
    title: str = DEFAULT_TITLE


def read_options(reader: Reader, node: Node | None, option: str) -> Options | None:
    """Read a paperless destination's options (its entry in `deliver:` without the common
    keys); problems name file, line and option, and give None."""
    found = reader.mapping(node, option, KEYS)
    url = reader.text(found.get("url"), f"{option}.url")
    if url is None:
        reader.problem(node, f"{option}.url", "required: the address of paperless-ngx")
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        reader.problem(
            found["url"], f"{option}.url", f"expected an http(s) address, got {quoted(url)}"
        )
        return None
    allow_http = reader.boolean(found.get("allow_http"), f"{option}.allow_http", False)
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        reader.problem(
            found["url"],
            f"{option}.url",
            "plain http to another machine sends documents and the token in clear: use https "
            "(or allow_http: true)",
        )
    token = parse_secret(reader, found.get("token"), f"{option}.token")
    user = reader.text(found.get("user"), f"{option}.user")
    password = parse_secret(reader, found.get("password"), f"{option}.password")
    if token is None and (user is None or password is None):
        if is_null(found.get("token")) and not ("user" in found or "password" in found):
            reader.problem(node, option, "give a token, or a user and a password")
        elif "user" in found or "password" in found:
            reader.problem(node, option, "a user needs a password, and a password a user")
    title = reader.text(found.get("title"), f"{option}.title", DEFAULT_TITLE)
    if (error := template_error(title)) is not None:
        reader.problem(found.get("title"), f"{option}.title", error)
    return Options(
        url=url.strip().rstrip("/"),
        token=token,
        user=user,
        password=password,
        ca_bundle=reader.path(found.get("ca_bundle"), f"{option}.ca_bundle"),
        document_type=reader.text(found.get("document_type"), f"{option}.document_type"),
        tags=tuple(reader.text_list(found.get("tags"), f"{option}.tags")),
        number_field=_field_name(reader, found, "number_field", option, "Invoice number"),
        amount_field=_field_name(reader, found, "amount_field", option, "Amount"),
        title=title,
    )


def _field_name(reader: Reader, found: dict, key: str, option: str, default: str) -> str | None:
    """A custom field's name; `false` (or an empty name) sends no such field."""
    node = found.get(key)
    if node is not None and getattr(node, "tag", "").endswith(":bool"):
        if reader.boolean(node, f"{option}.{key}", True):
            return default
        return None
    return reader.text(node, f"{option}.{key}", default) or None


def render_title(template: str, item: Delivery) -> str:
    """The document's title: the template filled with its fields, or the file's name."""
    return fill(template, item.fields, item.name)[:128] or Path(item.name).stem[:128]


def monetary(amount: str | None, currency: str | None) -> str | None:
    """paperless's monetary value, e.g. "EUR42.00"; None for what is not an amount."""
    if not amount:
        return None
    try:
        value = Decimal(amount.replace(",", ".")).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    code = (currency or "").upper()
    return f"{code if len(code) == 3 and code.isalpha() else ''}{value}"


def destination(name: str, options: Options) -> Paperless:
    """The paperless destination of these options."""
    return Paperless(name, options)


class Paperless:
    """A paperless-ngx server; deliver() is blocking, idempotent and safe to retry."""

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.options = options
        self.api = JsonApi("paperless", options.url, options.ca_bundle)
        self.api.session.headers["Accept"] = "application/json; version=10"
        self._login_lock = threading.Lock()  # deliver() runs in several threads at once
        self._ids: dict[tuple[str, str], int] = {}  # (kind, name) -> id, for this session
        self._uncertain: dict[str, float] = {}  # key -> until when a cut upload may land

    def close(self) -> None:
        self.api.close()

    # ----------------------------------------------------------------- delivery

    def deliver(self, item: Delivery, deadline: float) -> str:
        """File the document in paperless; its document id (one paperless already had, too)."""
        self._login(deadline)
        # An upload cut off by its deadline may still be taken by paperless a little later:
        # give it that time before posting again.
        uncertain_until = self._uncertain.get(item.key, 0.0)
        while True:
            task = self._running_task(item, deadline)
            if task is not None:
                break
            if (known := self._document_with_checksum(item.sha256, deadline)) is not None:
                logger.info("%s: %s is already document %s", self.name, item.name, known)
                self._uncertain.pop(item.key, None)
                return str(known)
            if time.monotonic() >= uncertain_until:
                task = self._post(item, deadline)
                break
            if time.monotonic() + POLL_MAX > deadline:
                raise DeliveryFailed(f"paperless: waiting for an earlier upload of {item.name}")
            time.sleep(POLL_MAX)
        self._uncertain.pop(item.key, None)
        return str(self._follow(task, item, deadline))

    def _running_task(self, item: Delivery, deadline: float) -> str | None:
        """The consume task of this file that an earlier attempt started and that still runs."""
        answer = self.api.get(
            "/api/tasks/",
            {"task_type": "consume_file", "is_complete": "false", "name": item.name},
            deadline,
        )
        wanted = unicodedata.normalize("NFC", item.name)
        for task in answer.get("results") or []:
            data = task.get("input_data") or {}
            if wanted in (data.get("filename"), (data.get("overrides") or {}).get("filename")):
                return task.get("task_id")
        return None

    def _document_with_checksum(self, sha256: str, deadline: float) -> int | None:
        answer = self.api.get(
            "/api/documents/", {"checksum__iexact": sha256, "fields": "id"}, deadline
        )
        results = answer.get("results") or []
        return results[0]["id"] if results else None

    def _post(self, item: Delivery, deadline: float) -> str:
        """Post the document with its metadata; paperless's task id."""
        for attempt in (1, 2):
            form = self._form(item, deadline)
            try:
                file = item.path.open("rb")
            except OSError as e:
                raise DeliveryFailed(f"cannot read {item.path}: {e.strerror}") from None
            with file:
                files = {"document": (item.name, file, item.media_type)}
                try:
                    return str(
                        self.api.call(
                            "POST",
                            "/api/documents/post_document/",
                            deadline,
                            data=form,
                            files=files,
                        )
                    )
                except DeliveryFailed as e:
                    if not e.permanent:  # paperless may have it, or take it in a moment
                        self._uncertain[item.key] = time.monotonic() + UNCERTAIN_WAIT
                    raise
                except Refused as e:
                    # an id of ours may name something deleted since: look them up again
                    if attempt == 2 or not self._ids or "pk" not in str(e):
                        raise DeliveryFailed(
                            f"paperless refused {item.name}: {e}", permanent=True
                        ) from None
                    self._ids.clear()
        raise AssertionError("unreachable")

    def _form(self, item: Delivery, deadline: float) -> list[tuple[str, str]]:
        fields = item.fields
        form = [("title", render_title(self.options.title, item))]
        if fields.get("date"):
            form.append(("created", str(fields["date"])))
        if fields.get("company"):
            form.append(
                ("correspondent", str(self._id("correspondents", fields["company"], deadline)))
            )
        if self.options.document_type:
            form.append(
                (
                    "document_type",
                    str(self._id("document_types", self.options.document_type, deadline)),
                )
            )
        form += [("tags", str(self._id("tags", tag, deadline))) for tag in self.options.tags]
        custom: dict[str, str] = {}
        if self.options.number_field and fields.get("number"):
            field_id = self._id("custom_fields", self.options.number_field, deadline, "string")
            custom[str(field_id)] = str(fields["number"])
        amount = monetary(fields.get("amount"), fields.get("currency"))
        if self.options.amount_field and amount:
            field_id = self._id("custom_fields", self.options.amount_field, deadline, "monetary")
            custom[str(field_id)] = amount
        if custom:
            form.append(("custom_fields", json.dumps(custom)))
        return form

    def _follow(self, task_id: str, item: Delivery, deadline: float) -> int:
        """Wait for the consume task's end; the document's id, or DeliveryFailed."""
        pause = POLL_FIRST
        while True:
            answer = self.api.get("/api/tasks/", {"task_id": task_id}, deadline)
            tasks = answer.get("results") or []
            task = tasks[0] if tasks else {}
            status = str(task.get("status", "")).lower()
            result = task.get("result_data") or {}
            if status in ("success", "failure") and result.get("document_id") is not None:
                return int(result["document_id"])
            if result.get("duplicate_in_trash"):
                raise DeliveryFailed(
                    f"paperless has {item.name} in its trash (document "
                    f"{result.get('duplicate_of')}): restore it there, or empty the trash",
                    permanent=True,
                )
            if result.get("duplicate_of") is not None:
                logger.info(
                    "%s: %s is a duplicate of document %s",
                    self.name,
                    item.name,
                    result["duplicate_of"],
                )
                return int(result["duplicate_of"])
            if status in ("failure", "success"):
                why = result.get("error_message") or result.get("reason") or "no reason given"
                raise DeliveryFailed(
                    f"paperless did not take {item.name}: {self.api.scrub(why)}", permanent=True
                )
            if status == "revoked":
                raise DeliveryFailed(f"paperless's task for {item.name} was revoked")
            if time.monotonic() + pause > deadline:
                state = status or "not listed yet"
                raise DeliveryFailed(
                    f"paperless is still consuming {item.name} (task {task_id}, {state}); "
                    "the next attempt follows it"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_MAX)

    # ----------------------------------------------------------------- names to ids

    def _id(self, kind: str, name: str, deadline: float, data_type: str | None = None) -> int:
        """The id of the correspondent, document type, tag or custom field of that name,
        created when paperless has none."""
        key = (kind, name.casefold())
        if key in self._ids:
            return self._ids[key]
        found = self._lookup(kind, name, deadline)
        if found is None:
            found = self._create(kind, name, deadline, data_type)
        self._ids[key] = found
        return found

    def _create(self, kind: str, name: str, deadline: float, data_type: str | None) -> int:
        body: dict[str, Any] = {"name": name}
        if data_type is None:
            body["matching_algorithm"] = 0  # none: paperless must not assign it by itself
        else:
            body["data_type"] = data_type
        try:
            return int(self.api.call("POST", f"/api/{kind}/", deadline, json=body)["id"])
        except (Refused, DeliveryFailed) as e:
            # Made meanwhile by another delivery: paperless says "violates owner / name unique
            # constraint" or "... with this name already exists", or in a closer race fails
            # with 500 on its database's constraint. Then it is there now.
            if (found := self._lookup(kind, name, deadline)) is not None:
                return found
            if isinstance(e, DeliveryFailed):
                raise
            what = kind.rstrip("s").replace("_", " ")
            raise DeliveryFailed(
                f"paperless refused the {what} {quoted(name)}: {e}", permanent=True
            ) from None

    def _lookup(self, kind: str, name: str, deadline: float) -> int | None:
        results = self.api.get(f"/api/{kind}/", {"name__iexact": name}, deadline).get("results")
        results = results or []
        exact = [r for r in results if r.get("name") == name]
        return int((exact or results)[0]["id"]) if results else None

    # ----------------------------------------------------------------- HTTP

    def _login(self, deadline: float) -> None:
        """Resolve the token (once) and send it with every request; a user and password are
        exchanged for the user's token first (each password check costs paperless a hash)."""
        with self._login_lock:
            if not self.api.secrets:
                self._log_in(deadline)

    def _log_in(self, deadline: float) -> None:
        options = self.options
        self.api.session.headers.pop("Authorization", None)
        try:
            secret = (options.token or options.password).resolve()  # type: ignore[union-attr]
        except SecretError as e:
            raise DeliveryFailed(f"paperless {self.name}: {e}") from None
        self.api.secrets = [secret]
        if options.token is None:
            form = {"username": options.user, "password": secret}
            try:
                answer = self.api.call("POST", "/api/token/", deadline, data=form)
            except Refused as e:
                self.api.secrets = []
                raise DeliveryFailed(
                    f"paperless refused the login of {options.user}: {e}", permanent=True
                ) from None
            token = str(answer.get("token") or "") if isinstance(answer, dict) else ""
            if not token:
                self.api.secrets = []
                raise DeliveryFailed("paperless answered the login without a token")
            self.api.secrets.append(token)
            secret = token
        self.api.session.headers["Authorization"] = f"Token {secret}"
