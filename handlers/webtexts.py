"""The complainant's web pages in the `messages` catalogs: the web chat's chrome, the progress
page (/c/<number>) and the default privacy notice (/privacy).

Kept here, beside the chat's texts, so one extraction (`pybabel extract ... handlers/`) finds
them and a complainant reads the same words in the chat and on the pages.
"""

from __future__ import annotations

from collections.abc import Mapping

from handlers.i18n import N_, translator

# The web chat page: keys are what webchat.js and the template look up.
CHAT_TEXTS: Mapping[str, str] = {
    "title": N_("Complaints"),
    "new_chat": N_("New chat"),
    "mine": N_("My complaints"),
    "send": N_("Send"),
    "placeholder": N_("Type your answer"),
    "upload_photo": N_("Upload photo"),
    "send_location": N_("Send my location"),
    "confirm_new": N_(
        "Start a new chat? What you are filling in now is discarded. The complaints you "
        "filed stay under “My complaints”."
    ),
    "confirm_cancel": N_("Discard the complaint you are filling in?"),
    "yes_new": N_("Start a new chat"),
    "yes_cancel": N_("Discard it"),
    "keep": N_("Keep going"),
    "edit_menu": N_("Edit…"),
    "copy": N_("Copy"),
    "copied": N_("Copied"),
    "number": N_("Complaint number"),
    "code": N_("Access code"),
    "view_progress": N_("View progress"),
    "find": N_("Find a complaint"),
    "find_hint": N_("From any phone or computer: the number and the phone you gave, or the code."),
    "proof": N_("Phone number or access code"),
    "find_button": N_("Find"),
    "close": N_("Close"),
    "none_yet": N_("No complaints here yet."),
    "privacy": N_("Privacy notice"),
    "network_error": N_("Network error, please try again."),
    "failed": N_("Something went wrong, please try again."),
    "upload_failed": N_("Upload failed, please try again."),
    "no_location": N_("Location unavailable, please type the address."),
    "conversation": N_("Conversation"),
    "scan": N_("Scan to follow on another phone"),
}

STATUS_TEXTS: Mapping[str, str] = {
    "title": N_("Progress of complaint {number}"),
    "state": N_("State"),
    "deadlines": N_("What happens by when"),
    "no_deadlines": N_("No date is pending."),
    "check_intro": N_(
        "To see the history and the replies, show that it is yours: the phone number you "
        "gave, or the access code on the receipt."
    ),
    "proof": N_("Phone number or access code"),
    "show": N_("Show"),
    "wrong": N_("That phone number or code does not match this complaint."),
    "unknown": N_("There is no complaint with this number."),
    "history": N_("History"),
    "reply": N_("Reply"),
    "filed": N_("Filed"),
    "phone": N_("Phone"),
    "category": N_("Category"),
    "scan": N_("Scan to open this page on another phone"),
    "chat": N_("Back to the chat"),
    "privacy": N_("Privacy notice"),
}

PRIVACY_TEXTS: Mapping[str, str] = {
    "title": N_("Privacy notice"),
    "who": N_("{organisation} handles the complaints filed here."),
    "what_h": N_("What we collect"),
    "what": N_(
        "What you tell us about the complaint (what happened, when, where, about whom, what "
        "you ask for, photos), and, if you give them, your name and phone number."
    ),
    "why_h": N_("Why"),
    "why": N_(
        "Only to handle your complaint: to check it, pass it to the department in charge, "
        "contact you and tell you the result, and to keep the register the rules require."
    ),
    "seen_h": N_("Who sees it"),
    "seen": N_(
        "The staff who take in and handle the complaint and their supervisors. A person or "
        "department you complain about never sees who complained."
    ),
    "kept_h": N_("How long it is kept"),
    "kept": N_("{years} years after the complaint is closed; then it is deleted or anonymised."),
    "rights_h": N_("Your rights"),
    "rights": N_(
        "You may file anonymously, ask what we hold about you, ask for corrections, and "
        "withdraw a complaint. Ask at the desk or in the chat."
    ),
}


def texts(table: Mapping[str, str], lang: str) -> dict[str, str]:
    """`table` translated into `lang`."""
    _ = translator(lang)
    return {key: _(message) for key, message in table.items()}
