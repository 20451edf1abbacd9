"""Field types shared by every module's API contract.

PostgreSQL refuses NUL in text and NaN/Infinity in JSON, and SQLite would store them; either way
such input is a client error, so it is refused at the edge with a 422 naming the field.
"""

from __future__ import annotations

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


def line_text(max_length: int, *, min_length: int = 1) -> Any:
    """One line of text: names, labels, codes shown to people. No control characters."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length, pattern=r"^[^\x00-\x1f\x7f]*$")]


def free_text(max_length: int) -> Any:
    """Descriptions and notes: line breaks allowed, NUL not."""
    return Annotated[str, StringConstraints(max_length=max_length, pattern=r"^[^\x00]*$")]


#: A JSON object held as-is (attributes, addresses).
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_value)]
