"""Fuzzing the platform-neutral dialog engine: hypothesis streams of every kind of `Incoming`
(text in any script and "numbers" like "²", choices offered and forged, photos and files of any
size, locations, contacts, commands) for several profiles and languages. The engine must never
raise and must always answer: a reply, or a command the shell answers (tests/engine_fuzz.py).

bench/fuzz.py runs the same streams 10 000 times; the suite keeps to a small number.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.messages import FileRef, Incoming
from tests.engine_fuzz import PROFILES, check_turn, conversation, run_stream


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(st.data())
def test_the_engine_answers_every_stream_of_messages(data: st.DataObject) -> None:
    conv = run_stream(data.draw, max_turns=30)
    assert conv.turns >= 1


def test_numbers_int_refuses_are_answered_at_every_numbered_question() -> None:
    """The crash found last time: "²" (a digit to str.isdigit, not to int) typed where a
    number picks a choice; and a 5 000-digit number (over int's string limit)."""
    for profile in PROFILES:
        for typed in ("²", "9" * 5000, "１", "٣"):
            conv = conversation(profile, "zh_CN")
            check_turn(conv, Incoming("web", "p", "command", command="start"))
            for _ in range(12):  # walk into the form, typing the number at each question
                check_turn(conv, Incoming("web", "p", "text", text=typed))
                offered = conv.offered()
                if offered:
                    check_turn(conv, Incoming("web", "p", "choice", choice=offered[0]))
            check_turn(conv, Incoming("web", "p", "command", command="status", command_args=typed))


def test_files_of_any_size_at_any_step_are_answered() -> None:
    for profile in PROFILES:
        conv = conversation(profile, "en", max_photos=1)
        check_turn(conv, Incoming("web", "p", "command", command="start"))
        for size in (None, 0, 1, 2 * 1024 * 1024 + 1, 10**12):
            photo = FileRef(file_id="att:1", file_name=None, mime_type=None, size=size)
            check_turn(conv, Incoming("web", "p", "photo", file=photo))
            offered = conv.offered()
            if offered:
                check_turn(conv, Incoming("web", "p", "choice", choice=offered[-1]))
