"""Help ▸ Keyboard shortcuts: read from the menus' actions and the panels' own shortcuts, so it never goes stale."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QMenu, QMenuBar, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

ShortcutRow = tuple[str, str]
"""(what it does, e.g. 'File ▸ Open model…'; the keys, e.g. 'Ctrl+O')"""


def plain_title(text: str) -> str:
    """A menu text without its mnemonic markers: '&Open model…' -> 'Open model…', 'A && B' -> 'A & B'."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def key_text(key: QKeySequence) -> str:
    """The key as this platform writes it; of a standard key's bindings (Paste: Ctrl+V, Shift+Ins, F18…) the first."""
    return key.toString(QKeySequence.SequenceFormat.NativeText)


def menu_shortcuts(menu: QMenu, path: str) -> list[ShortcutRow]:
    """Every action with a shortcut in `menu` and its sub-menus, named by its menu path."""
    rows: list[ShortcutRow] = []
    for action in menu.actions():
        title = f"{path} ▸ {plain_title(action.text())}"
        if action.menu() is not None:
            rows += menu_shortcuts(action.menu(), title)
        elif not action.shortcut().isEmpty():
            rows.append((title, key_text(action.shortcut())))
    return rows


def menu_bar_shortcuts(bar: QMenuBar) -> list[ShortcutRow]:
    return [row for action in bar.actions() if action.menu() is not None
            for row in menu_shortcuts(action.menu(), plain_title(action.text()))]


def panel_shortcuts(panels: dict[str, QWidget]) -> list[ShortcutRow]:
    """The QShortcuts of each panel (titles as keys), described by their What's This text."""
    return [(f"{title}: {shortcut.whatsThis()}", key_text(shortcut.key()))
            for title, panel in panels.items() for shortcut in panel.findChildren(QShortcut)]


class ShortcutsDialog(QDialog):
    """A two-column table: the menus' shortcuts, then the panels' own keys."""

    def __init__(self, bar: QMenuBar, panels: dict[str, QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent, windowTitle="Keyboard shortcuts")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        rows = menu_bar_shortcuts(bar) + panel_shortcuts(panels)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(("Action", "Keys"))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, texts in enumerate(rows):
            for column, text in enumerate(texts):
                self.table.setItem(row, column, QTableWidgetItem(text))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def rows(self) -> list[ShortcutRow]:
        return [(self.table.item(row, 0).text(), self.table.item(row, 1).text()) for row in range(self.table.rowCount())]
