"""The API's JSON parser: whatever a client sends, a bad body is a 400, never a 500.

DRF's own JSONParser lets Python's `json` module recurse once per nesting level, so a body of
`[` repeated 100,000 times raises RecursionError (a 500). Nothing the API accepts is nested
more than a few levels, and PostgreSQL refuses text holding NUL or an unpaired surrogate, so
all of these are refused here, before any view or database sees the data.
"""

import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json as drf_json

# Deeper than any body this API accepts (its inputs are flat objects), far below the
# interpreter's recursion limit.
MAX_JSON_DEPTH = 32
NUL = "\x00"


class UnsafeInput(ValueError):
    """Input that parsed, yet must not reach the service; `code` says why."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def text_checked(text: str) -> str:
    """Return text PostgreSQL can store; raise UnsafeInput for a NUL or a lone surrogate."""
    if NUL in text:
        raise UnsafeInput("null_character", "Text may not contain the NUL character (\\u0000).")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 text can hold.
        raise UnsafeInput("invalid_unicode", "Text may not contain unpaired surrogates.") from exc
    return text


def json_checked(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Return parsed JSON unchanged, or raise UnsafeInput if it nests too deep or holds bad text.

    Walks the value with an explicit stack, so checking a hostile value cannot recurse.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            text_checked(item)
        elif isinstance(item, float) and not math.isfinite(item):
            # 1e999 parses to infinity without a constant the strict parser would refuse; written
            # back it is "Infinity", which is not JSON and which PostgreSQL's jsonb refuses.
            raise UnsafeInput("number_out_of_range", "JSON numbers must be finite.")
        elif isinstance(item, Mapping | list):
            if depth > max_depth:
                raise UnsafeInput("too_deeply_nested", f"JSON may nest at most {max_depth} levels deep.")
            children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def json_loads_checked(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text and check it with `json_checked`; raise ValueError for anything refused.

    NaN and Infinity are refused, as in DRF's strict parser: they are not JSON.
    """
    try:
        value = json.loads(text, parse_constant=drf_json.strict_constant)
    except RecursionError as exc:
        # Only a body nested hundreds of levels deep exhausts the parser's recursion.
        raise UnsafeInput("too_deeply_nested", f"JSON may nest at most {max_depth} levels deep.") from exc
    return json_checked(value, max_depth=max_depth)


class SafeJSONParser(JSONParser):
    """Parse a JSON body, answering 400 for malformed, too deeply nested or NUL-bearing JSON."""

    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json_loads_checked(stream.read().decode(encoding))
        except UnsafeInput as exc:
            raise ParseError(str(exc), code=exc.code) from exc
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
            # `parse_error` is the code this API has always answered for malformed JSON.
            raise ParseError(f"The request body is not valid JSON: {exc}", code="parse_error") from exc
