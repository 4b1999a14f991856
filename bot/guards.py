"""Bounds for what arrives over HTTP, checked before anything parses or converts it.

Pure helpers plus one body reader, shared by the webhooks and the web chat:

- `read_body`: the request body up to a limit, refused (`BodyTooLarge`) past it, whether or not
  the client declared a Content-Length;
- `json_too_deep`: whether a JSON text nests arrays/objects deeper than a limit, found by a flat
  scan (no recursion, so a body nested 100 000 deep costs one regex pass, not a RecursionError);
- `load_json`: json.loads behind both checks (`BadJson` for anything that is not bounded JSON);
- `check_incoming`: an adapter's `Incoming` has the field types it declares;
- `ascii_digits`: a short run of ASCII digits ("²" and "١" are digits to `str.isdigit` and
  break `int`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from handlers.messages import Incoming

MAX_JSON_DEPTH = 32
# A JSON string (with its escapes) or one bracket; everything else is skipped by the regex.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")
_ASCII_DIGITS = re.compile(r"[0-9]+")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is limited to {limit} bytes")
        self.limit = limit


class BadJson(ValueError):
    """The body is not JSON we take: invalid, not UTF-8, or nested too deep."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; BodyTooLarge (nothing more read) past that."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects in `raw` nest deeper than `limit` (brackets inside strings are
    not counted). Unbalanced text is left for the parser to refuse."""
    depth = 0
    for match in _JSON_TOKENS.finditer(raw):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        if token[0] in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of `raw`; BadJson for invalid UTF-8, invalid JSON or excessive depth."""
    # Fewer brackets than the limit cannot nest past it: the scan is for bodies that might.
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_too_deep(raw, max_depth):
        raise BadJson(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadJson(f"not JSON: {error.__class__.__name__}") from None


def ascii_digits(text: str | None, max_length: int) -> bool:
    """`text` is 1..max_length ASCII digits (what `int` may safely be given)."""
    if not text or len(text) > max_length:
        return False
    return bool(_ASCII_DIGITS.fullmatch(text))


def check_incoming(incoming: Incoming) -> Incoming:
    """`incoming` when each field has its declared type; TypeError/ValueError otherwise (an
    adapter parsed a platform payload of the wrong shape: a number where text belongs, a
    latitude of 1e308)."""
    for name in ("text", "choice", "command", "phone", "location_label", "language"):
        value = getattr(incoming, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"Incoming.{name} is {type(value).__name__}, not text")
    if not isinstance(incoming.command_args, str) or not isinstance(incoming.user_id, str):
        raise TypeError("Incoming.command_args and user_id must be text")
    if incoming.display_name is not None and not isinstance(incoming.display_name, str):
        raise TypeError("Incoming.display_name must be text")
    for name, bound in (("latitude", 90.0), ("longitude", 180.0)):
        value = getattr(incoming, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"Incoming.{name} must be a number")
        if not -bound <= value <= bound:  # NaN fails this as well
            raise ValueError(f"Incoming.{name} out of range")
    file = incoming.file
    if file is not None:
        if not isinstance(file.file_id, str):
            raise TypeError("FileRef.file_id must be text")
        for name in ("file_name", "mime_type"):
            value = getattr(file, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"FileRef.{name} must be text")
        size = file.size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
            raise TypeError("FileRef.size must be an integer")
    return incoming
