"""The application's look: the dark reading-room palette (the default) or Qt's light one."""

from __future__ import annotations


def apply_theme(app: object, theme: str = "dark") -> None:
    """Dark (reading rooms are dark; the default) or Qt's light Fusion palette."""
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    if theme == "light":
        app.setStyle("Fusion")
        app.setPalette(app.style().standardPalette())
    else:
        apply_dark_theme(app)


def apply_dark_theme(app: object) -> None:
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    app.setStyle("Fusion")
    pal = QPalette()
    base, text, mid = QColor(30, 30, 32), QColor(220, 220, 220), QColor(45, 45, 48)
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, mid),
        (roles.WindowText, text),
        (roles.Base, base),
        (roles.AlternateBase, mid),
        (roles.Text, text),
        (roles.Button, mid),
        (roles.ButtonText, text),
        (roles.ToolTipBase, base),
        (roles.ToolTipText, text),
        (roles.Highlight, QColor(60, 110, 180)),
        (roles.HighlightedText, QColor(255, 255, 255)),
    ):
        pal.setColor(role, colour)
    app.setPalette(pal)
