"""The customer 360 is assembled from sections that modules register.

`customers` knows nothing of carts, orders or conversations: the commerce, loyalty and inbox
modules each register a section provider at startup, and `GET /v1/customers/{id}` and the
privacy export call them all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from seamline.customers.models import CustomerIdentity, CustomerProfile


@dataclass(frozen=True)
class CustomerContext:
    profile: CustomerProfile
    identities: list[CustomerIdentity]

    @property
    def identity_ids(self) -> list[int]:
        return [i.id for i in self.identities]


SectionProvider = Callable[[Session, CustomerContext], Any]
#: Deletes what a module holds about the person at erasure; returns how many records went.
Eraser = Callable[[Session, CustomerContext], int]


class SectionRegistry:
    def __init__(self) -> None:
        self._sections: dict[str, SectionProvider] = {}
        self._exports: dict[str, SectionProvider] = {}
        self._erasers: dict[str, Eraser] = {}

    def register(
        self, name: str, provider: SectionProvider | None, *, export: SectionProvider | None = None, erase: Eraser | None = None
    ) -> None:
        """`export` gives the fuller data-subject export of the section (defaults to `provider`);
        `erase` removes the module's personal data of the person when they are erased. Without a
        `provider` the section is not part of the 360 view, only of the export and the erasure."""
        if name in self._sections or name in self._exports:
            raise ValueError(f"customer section {name!r} is registered twice")
        if provider is not None:
            self._sections[name] = provider
        export = export or provider
        if export is None:
            raise ValueError(f"customer section {name!r} needs a provider or an export")
        self._exports[name] = export
        if erase is not None:
            self._erasers[name] = erase

    @property
    def names(self) -> list[str]:
        return list(self._sections)

    def build(self, session: Session, context: CustomerContext, *, only: Collection[str] | None = None) -> dict[str, Any]:
        """Every section, or those named in `only`."""
        return {name: provider(session, context) for name, provider in self._sections.items() if only is None or name in only}

    def export(self, session: Session, context: CustomerContext) -> dict[str, Any]:
        return {name: provider(session, context) for name, provider in self._exports.items()}

    def erase(self, session: Session, context: CustomerContext) -> dict[str, int]:
        return {name: eraser(session, context) for name, eraser in self._erasers.items()}
