"""The conversations' words for the notifications the models queue.

models/notifications.py decides who hears of a transition and builds what they are told about
(models.cards); the words are written here in handlers/ (handlers.staff for staff, with their
buttons; handlers.notices for the complainant). The models never import them: each process
that acts on complaints installs them once at set-up with `install()` — bot.app.create_app
(`complaintdesk run`/`demo`, the web chat, the desk), scheduler.cli (`complaintdesk jobs`), the
tests' conftest and the benches' set-up — so the imports run one way, handlers → models.
"""

from __future__ import annotations

from handlers.notices import render_milestone
from handlers.staff import render_notification
from models.notifications import NotificationTexts, use_notification_texts

CHAT_TEXTS = NotificationTexts(staff=render_notification, milestone=render_milestone)


def install() -> None:
    """Word this process's notifications with the chat texts (idempotent)."""
    use_notification_texts(CHAT_TEXTS)
