"""Field types shared by every module's API contract, and the NUL character rule.

PostgreSQL refuses NUL in text and NaN/Infinity in JSON, and SQLite would store them; either way
such input is a client error, so it is refused at the edge with a 422 naming the field.

NUL is handled in one place per kind of input, the same on both databases:
- API requests: `core/limits.NoNul` refuses a NUL anywhere in a request's path, query string,
  JSON or form body (422 `validation_error`, each place named), before any route sees it;
- collection: each event with a NUL is rejected on its own (`events/ingest.check_message`,
  reason `nul_character`), so the rest of a batch is stored;
- what providers send (email, messengers, SMS): NULs are dropped from the normalized message
  (`strip_nul`, in `inbox/delivery`), so the message is kept.
`nul_paths` and `strip_nul` serve all three.

Requests of the management API are strict (`RequestModel`): a JSON body with a field the model
does not have is refused (422 naming it; the schema says `additionalProperties: false`), and
values are not coerced: booleans are true or false, integers are integers (not false, 1.5 or
"5"), date-times are ISO 8601 text (`DateTime`, `AwareDateTime`: not numbers). Ids are at most
`MAX_ID`. What other systems send (Segment collection, providers' webhooks) stays lenient.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import date, datetime
from typing import Annotated, Any, get_args

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

#: How deeply JSON values may nest. Deeper documents could be stored but not rendered again
#: (the JSON serializer has a depth limit), so they are refused up front.
MAX_JSON_DEPTH = 32


def check_json_value(root: Any) -> Any:
    """No NUL in any string, no NaN or infinity, integers within 64 bits, bounded nesting. Iterative, so a deeply nested
    document cannot exhaust the stack. Returns the value, to serve as a validator."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("strings must not contain NUL characters")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("numbers must be finite (no NaN or Infinity)")
        elif isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError("integers must fit in 64 bits")
        elif isinstance(value, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"the value nests deeper than {MAX_JSON_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for k, v in items:
                if k is not None:
                    stack.append((k, depth + 1))
                stack.append((v, depth + 1))
    return root


def nul_paths(root: Any, *, limit: int = 20) -> list[list[str]]:
    """Where a JSON value holds NUL characters: the path of each string (or object key) with one,
    e.g. [["properties", "name"], ["items", "3"]]; at most `limit`. Iterative, like
    `check_json_value`."""
    found: list[list[str]] = []
    stack: list[tuple[Any, list[str]]] = [(root, [])]
    while stack and len(found) < limit:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(path)
        elif isinstance(value, dict):
            for k, v in reversed(list(value.items())):
                if isinstance(k, str) and "\x00" in k:
                    found.append([*path, k])
                stack.append((v, [*path, str(k)]))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, [*path, str(i)]) for i, v in reversed(list(enumerate(value))))
    return found


def strip_nul(value: Any) -> Any:
    """The value with NUL characters removed from every string in it (and in dict keys, lists,
    tuples, dataclasses); anything else (bytes, numbers) as it is. For what providers send: text
    decoded from UTF-16 as 8-bit, or C strings, carry NULs that mean nothing."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    if isinstance(value, tuple):
        return tuple(strip_nul(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for item in dataclasses.fields(value):
            before = getattr(value, item.name)
            after = strip_nul(before)
            if after != before:
                changes[item.name] = after
        return dataclasses.replace(value, **changes) if changes else value
    return value


def line_text(max_length: int, *, min_length: int = 1) -> Any:
    """One line of text: names, labels, codes shown to people. No control characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=r"^[^\x00-\x1f\x7f]*$")]


def free_text(max_length: int) -> Any:
    """Descriptions and notes: line breaks allowed, NUL not."""
    return Annotated[str, StringConstraints(max_length=max_length, pattern=r"^[^\x00]*$")]


#: A JSON object held as-is (attributes, addresses).
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_value)]


# --- strict requests -------------------------------------------------------------------------------


class RequestModel(BaseModel):
    """A JSON request body of the management API. Unknown fields are refused (a typo is a 422
    naming the field, not silently ignored) and types are strict: no bool from 0, no int from
    false, 1.5 or "5", no number from a string. Subclasses used as responses (`...Read(...Put)`)
    set `extra="ignore", strict=False` again."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers_are_integers(cls, data: Any) -> Any:
        """JSON Schema calls 5.0 an integer (so do JavaScript clients, which have no other kind of
        number): an integer field takes it as 5. 5.5, "5" and false stay refused."""
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key in data and _takes_int(field.annotation):
                data = {**data, key: _whole(data[key])}
        return data


def _takes_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    return any(_takes_int(argument) for argument in get_args(annotation) if argument is not annotation)


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


#: Lax config for a response model that extends a request model.
RESPONSE_CONFIG = ConfigDict(extra="ignore", strict=False)

#: The largest id the API takes: 2**53 - 1, the largest integer a float (JSON in JavaScript and
#: most clients) holds exactly. Ids above it could not be told apart by such clients anyway.
MAX_ID = 2**53 - 1

#: An id in a request body (strict in a `RequestModel`).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def path_id(**kwargs: Any) -> Any:
    """A path parameter that is an id: `Annotated[int, path_id(description=...)]`."""
    return Path(ge=1, le=MAX_ID, **kwargs)


def query_id(**kwargs: Any) -> Any:
    """A query parameter that is an id."""
    return Query(ge=1, le=MAX_ID, **kwargs)


#: Ids in the path and the query string.
PathId = Annotated[int, path_id()]
QueryId = Annotated[int | None, query_id()]

_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")


def _iso_text(value: Any) -> Any:
    """A date-time comes as ISO 8601 text (or, from Python, a datetime): not a number, nor a
    number in a string ("1700000000", "0.5"), which pydantic would read as Unix time."""
    if isinstance(value, datetime) or (isinstance(value, str) and not _NUMBER.fullmatch(value)):
        return value
    raise PydanticCustomError("datetime_type", "Input should be a date and time as ISO 8601 text, e.g. 2026-05-01T09:30:00Z")


#: A date-time given as ISO 8601 text; without a zone it is taken as given (the caller decides).
#: JSON schema: {"type": "string", "format": "date-time"}.
DateTime = Annotated[datetime, Strict(False), BeforeValidator(_iso_text)]
#: A date-time given as ISO 8601 text with its zone (`Z` or an offset).
AwareDateTime = Annotated[AwareDatetime, Strict(False), BeforeValidator(_iso_text)]


def _iso_date_text(value: Any) -> Any:
    """A date comes as YYYY-MM-DD (or, from Python, a date): not a number pydantic would read as
    Unix time."""
    if isinstance(value, date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise PydanticCustomError("date_type", "Input should be a date as YYYY-MM-DD, e.g. 2026-05-01")


#: A date given as YYYY-MM-DD. JSON schema: {"type": "string", "format": "date"}.
IsoDate = Annotated[date, Strict(False), BeforeValidator(_iso_date_text)]


def _query_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise PydanticCustomError("bool_type", "Input should be true or false")


#: A boolean query parameter: `true` or `false` only (not 0, 1, yes, on).
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]
