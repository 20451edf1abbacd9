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
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

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
