"""The checks the control methods make of their parameters; InvalidParams says what is wrong.

Each check takes the request's parameters and one key, and returns the value (None when it is
not given and may be left out). The server answers InvalidParams with INVALID_PARAMS.
"""

from __future__ import annotations

from typing import Any

from gmid.errors import GmidError

Params = dict[str, Any]
# The index's numbers are SQLite integers: a bigger one overflows in the query (a traceback).
MAX_WHOLE = 2**63 - 1


class InvalidParams(GmidError):
    """A request's parameters are not what the method takes; `data` may list the problems."""

    def __init__(self, message: str, data: Any = None):
        super().__init__(message)
        self.data = data


def only(params: Params, known: tuple[str, ...]) -> None:
    """Refuse parameters the method does not know: a typo must not be silently ignored."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidParams(f"unknown parameter {', '.join(unknown)} (known: {', '.join(known)})")


def text(params: Params, key: str) -> str:
    """A text that must be given and not be blank: a name, a URL, an answer."""
    value = params.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidParams(f"{key} must be a non-empty string")
    return value


def optional_text(params: Params, key: str) -> str | None:
    """A text that may be left out (or null), but not blank when given."""
    return None if params.get(key) is None else text(params, key)


def string(params: Params, key: str) -> str | None:
    """Any string, the empty one too (a filter); None when left out."""
    value = params.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParams(f"{key} must be a string")
    return value


def flag(params: Params, key: str) -> bool | None:
    """True or false; None when left out."""
    value = params.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidParams(f"{key} must be true or false")
    return value


def mapping(params: Params, key: str) -> dict[str, Any] | None:
    """A JSON object; None when left out."""
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidParams(f"{key} must be a mapping")
    return value


def strings(params: Params, key: str, what: str) -> list[str] | None:
    """A list of strings (`what` they are, for the message); None when left out."""
    value = params.get(key)
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(item, str) for item in value)
    ):
        raise InvalidParams(f"{key} must be a list of {what}")
    return value


def whole_number(params: Params, key: str, default: int, low: int, high: int = MAX_WHOLE) -> int:
    """A whole number from `low` to `high` (at most MAX_WHOLE); `default` when left out."""
    high = min(high, MAX_WHOLE)
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > high:
        bound = f"{low}..{high}"
        raise InvalidParams(f"{key} must be a whole number {bound}")
    return value
