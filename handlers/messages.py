"""The neutral messages the dialog engine speaks (defined in models.messages, stored by the
outbox there); re-exported so the conversations and the adapters keep one import path."""

from models.messages import AskKind, Choice, FileRef, Incoming, IncomingKind, Outgoing

__all__ = ["AskKind", "Choice", "FileRef", "Incoming", "IncomingKind", "Outgoing"]
