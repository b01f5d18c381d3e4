"""Undo and redo of the user's changes: one stack per window, which the panels share through the Selection.

Each panel records its own changes as a pair of functions, one that applies the new state and one that restores
the old one; an action that changes several panels (a click on the map also picks the face to edit) is one macro of
their changes. While a change is applied or restored the stack is `replaying`: the widget signals that this sets
off must record nothing, so panels ignore them (and restore every piece of their state themselves)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

NO_MERGING = -1


class Change(QUndoCommand):
    """One recorded change; consecutive changes with the same merge id become one step (a slider's drag)."""

    def __init__(self, stack: UndoStack, text: str, apply: Callable[[], None], revert: Callable[[], None],
                 merge_id: int) -> None:
        super().__init__(text)
        self._stack, self._apply, self._revert, self._merge_id = stack, apply, revert, merge_id

    def id(self) -> int:
        return self._merge_id

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt override
        if not isinstance(other, Change) or other.id() != self._merge_id:
            return False
        self._apply = other._apply
        self.setText(other.text())
        return True

    def redo(self) -> None:
        with self._stack.replay():
            self._apply()

    def undo(self) -> None:
        with self._stack.replay():
            self._revert()


class UndoStack(QUndoStack):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.replaying = False
        self._merge_ids: dict[str, int] = {}

    def record(self, text: str, apply: Callable[[], None], revert: Callable[[], None],
               merge_key: str | None = None) -> None:
        """Apply a change as an undoable step named `text`; while replaying (or not recording) just apply it.
        Consecutive changes with the same `merge_key` are undone together."""
        if self.replaying:
            apply()
            return
        merge_id = NO_MERGING if merge_key is None else self._merge_ids.setdefault(merge_key, len(self._merge_ids))
        self.push(Change(self, text, apply, revert, merge_id))

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Changes made inside are not recorded (undo/redo, or the app setting itself up for a new model)."""
        previous, self.replaying = self.replaying, True
        try:
            yield
        finally:
            self.replaying = previous

    @contextmanager
    def macro(self, text: str) -> Iterator[None]:
        """The changes recorded inside are one step named `text`."""
        if self.replaying:
            yield
            return
        self.beginMacro(text)
        try:
            yield
        finally:
            self.endMacro()
