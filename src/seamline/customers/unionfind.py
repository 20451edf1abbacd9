"""Union-find with merge rules: the one place that decides whether two groups may join.

Used by the per-request resolution, by unmerge, and by the batch rebuild, so the three agree by
construction. A group carries how many identifiers of each type it holds and optional marks;
two groups join only if every type stays within its limit (unless the link is forced) and their
marks do not clash (unmerge marks the two sides it must keep apart).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class UnionOutcome:
    joined: bool
    #: Roots before the union (a's, b's); equal when already in one group.
    root_a: Hashable
    root_b: Hashable
    #: Why the union was refused: {"user_id": {"limit": 1, "would_have": 2}} or {"separated": ...}
    violations: dict[str, Any] = field(default_factory=dict)

    @property
    def already_joined(self) -> bool:
        return self.root_a == self.root_b


class RuleUnionFind:
    def __init__(self, limit: Callable[[str], int]):
        self._limit = limit
        self._parent: dict[Hashable, Hashable] = {}
        self._counts: dict[Hashable, dict[str, int]] = {}
        self._marks: dict[Hashable, frozenset[Hashable]] = {}
        self._members: dict[Hashable, list[Hashable]] = {}

    def add(self, node: Hashable, counts: dict[str, int], marks: frozenset[Hashable] = frozenset()) -> None:
        if node in self._parent:
            return
        self._parent[node] = node
        self._counts[node] = dict(counts)
        self._marks[node] = marks
        self._members[node] = [node]

    def __contains__(self, node: Hashable) -> bool:
        return node in self._parent

    def find(self, node: Hashable) -> Hashable:
        parent = self._parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def members(self, node: Hashable) -> list[Hashable]:
        return list(self._members[self.find(node)])

    def check(self, root_a: Hashable, root_b: Hashable) -> dict[str, Any]:
        """The rules a union of these two roots would break (empty: allowed)."""
        violations: dict[str, Any] = {}
        marks_a, marks_b = self._marks[root_a], self._marks[root_b]
        if marks_a and marks_b and marks_a != marks_b:
            violations["separated"] = {"reason": "kept apart by an unmerge"}
        counts_a, counts_b = self._counts[root_a], self._counts[root_b]
        for type_name, count in counts_b.items():
            if type_name in counts_a:
                total = counts_a[type_name] + count
                limit = self._limit(type_name)
                if total > limit:
                    violations[type_name] = {"limit": limit, "would_have": total}
        return violations

    def union(self, a: Hashable, b: Hashable, *, forced: bool = False) -> UnionOutcome:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return UnionOutcome(True, root_a, root_b)
        violations = self._join(root_a, root_b, forced)
        return UnionOutcome(not violations, root_a, root_b, violations)

    def try_join(self, a: Hashable, b: Hashable, *, forced: bool = False) -> dict[str, Any]:
        """`union` without the outcome object, for the batch replay: the violations (empty when
        the groups joined or were one already)."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return {}
        return self._join(root_a, root_b, forced)

    def _join(self, root_a: Hashable, root_b: Hashable, forced: bool) -> dict[str, Any]:
        violations = self.check(root_a, root_b)
        if forced:  # a forced link overrides the limits, not an unmerge's separation
            violations = {k: v for k, v in violations.items() if k == "separated"}
        if violations:
            return violations
        # Union by size; the bigger group's root stays root.
        if len(self._members[root_a]) < len(self._members[root_b]):
            big, small = root_b, root_a
        else:
            big, small = root_a, root_b
        self._parent[small] = big
        merged = self._counts[big]
        for type_name, count in self._counts.pop(small).items():
            merged[type_name] = merged.get(type_name, 0) + count
        self._marks[big] = self._marks[big] | self._marks.pop(small)
        self._members[big].extend(self._members.pop(small))
        return violations

    def groups(self) -> list[list[Hashable]]:
        return [list(m) for m in self._members.values()]
