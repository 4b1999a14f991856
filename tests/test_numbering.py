"""Complaint numbers per profile ([numbering] format): the formats (pure), gap-free serials under
concurrency on SQLite and PostgreSQL, and every door a number comes in by (/status, /find,
/c/<number>, the API, Open311, the desk search) finding an R17 YYMM-NN number as well as the
numbers issued before."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tortoise import connections

from config.profiles import ProfileError, load_profile
from handlers.commands import LinkComplaint
from handlers.lookup import FindComplaint
from models.actions import Clock, submit_complaint
from models.api_tokens import create_token
from models.entities import Channel, Complaint
from models.numbering import (
    FORMATS,
    NUMBER_IN_TEXT,
    example_number,
    format_number,
    is_provisional,
    normalise_number,
    number_format,
    provisional_number,
)
from tests.desk_support import desk_client, give_password, page, sign_in
from tests.dialog_chat import Chat
from tests.staff_world import CALENDAR, SHANGHAI, make_world
from tests.test_webchat import post, said, webchat
from tests.waiting import WITHIN_SECONDS

MANUFACTURING = {
    "category": "in_province",
    "facts": "来料短路，批次不良。",
    "order_number": "PO-2611 料号 A-17",
    "quantities": "500件，11月20日交运，不良20件",
    "name": "王工",
    "phone": "+8613812345678",
}
NOVEMBER = datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)


def at(when: datetime = NOVEMBER) -> Clock:
    return Clock(CALENDAR, SHANGHAI, when)


async def file(
    profile_id: str = "manufacturing",
    user: str = "u1",
    *,
    conn: Any = None,
    numbering: list[Any] | None = None,
    **extra: Any,
) -> Complaint:
    return await submit_complaint(
        profile=load_profile(profile_id),
        channel=Channel.WEB,
        external_id=user,
        chat_id=user,
        answers={**MANUFACTURING, **extra},
        clock=at(),
        conn=conn,
        numbering=numbering,
    )


# ---------------------------------------------------------------- pure


def test_each_format_numbers_its_serials_and_grows_past_its_width() -> None:
    assert format_number("YYYYMM-NNNN", "202612", 1) == "202612-0001"
    assert format_number("YYYYMM-NNNN", "202612", 9999) == "202612-9999"
    assert format_number("YYYYMM-NNNN", "202612", 10000) == "202612-10000"
    assert format_number("YYMM-NN", "202612", 1) == "2612-01"
    assert format_number("YYMM-NN", "202612", 99) == "2612-99"
    assert format_number("YYMM-NN", "202612", 100) == "2612-100"  # grows, never refuses
    assert format_number("YYMM-NN", "203001", 7) == "3001-07"
    assert example_number("YYMM-NN") == "2612-01"
    assert number_format("YYMM-NN").serial_width == 2
    with pytest.raises(KeyError, match="YYMM-NN"):
        format_number("NNNN", "202612", 1)
    with pytest.raises(ValueError):
        format_number("YYMM-NN", "2612", 1)
    with pytest.raises(ValueError):
        format_number("YYMM-NN", "202612", 0)


def test_every_shipped_format_is_recognised_and_nothing_else() -> None:
    for name in FORMATS:
        for serial in (1, 99, 100, 10000):
            number = format_number(name, "202612", serial)
            assert normalise_number(number) == number, number
    assert normalise_number(" 2612－01 ") == "2612-01"  # full-width dash, spaces
    assert normalise_number("202612—0001") == "202612-0001"
    for not_a_number in ("2612-1", "26121-01", "202612-001", "2612 01", "２６１２-０１", "", None):
        assert normalise_number(not_a_number) is None, not_a_number
    text = "您的投诉编号 2612-07，另一件 202611-0003；2026-12-01 受理。"
    assert NUMBER_IN_TEXT.findall(text) == ["2612-07", "202611-0003"]  # not the date


def test_profiles_choose_a_format_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    assert load_profile("manufacturing").numbering.format == "YYMM-NN"
    assert load_profile("gov-window").numbering.format == "YYYYMM-NNNN"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'id = "bad"\nextends = "manufacturing"\n[numbering]\nformat = "NN-YYYY"\n',
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match="YYMM-NN"):
        load_profile(bad)


def test_the_chat_asks_for_a_number_in_the_profiles_format_and_takes_any() -> None:
    chat = Chat(profile=load_profile("manufacturing"))
    chat.command("find")
    assert "2612-01" in chat.said and "202612-0001" not in chat.said
    chat.text("2611-07")
    chat.text("138 1234 5678")
    assert chat.commands[-1] == FindComplaint("2611-07", "+8613812345678", None)
    chat = Chat(profile=load_profile("manufacturing"))
    chat.command("find", "202611-0007 13812345678")  # issued before the format changed
    assert chat.commands[-1] == FindComplaint("202611-0007", "+8613812345678", None)
    # /status → follow a complaint recorded by phone: the number is asked in the same format.
    chat = Chat(profile=load_profile("manufacturing"))
    chat.command("status")
    chat.choose("status:link")
    assert "2612-01" in chat.said
    chat.text("2611－01")
    chat.text("13812345678")
    assert chat.commands[-1] == LinkComplaint("2611-01", "+8613812345678", 0)


def test_a_provisional_number_fits_the_column_and_is_never_a_number() -> None:
    marks = {provisional_number() for _ in range(1000)}
    assert len(marks) == 1000  # unique: the column is
    column = Complaint._meta.fields_map["number"].max_length  # type: ignore[attr-defined]
    for mark in marks:
        assert is_provisional(mark) and len(mark) <= column
        assert normalise_number(mark) is None and not NUMBER_IN_TEXT.search(mark)
    assert not any(is_provisional(format_number(name, "202612", 1)) for name in FORMATS)


# ---------------------------------------------------------------- the database


async def test_a_number_taken_last_rewrites_what_was_written_under_the_provisional_one(
    db_url: str, caplog: Any
) -> None:
    """A chat filing writes its replies (and its staff notifications) before it takes the
    number: taking it rewrites them, the complaint's rows and the chat's, and nothing else."""
    import logging

    from tortoise.transactions import in_transaction

    from models.actions import PendingNumber
    from models.entities import OutboxMessage
    from models.messages import Choice, Outgoing
    from models.outbox import enqueue

    pending: list[PendingNumber] = []
    with caplog.at_level(logging.INFO, logger="complaintdesk.events"):
        async with in_transaction() as tx:
            complaint = await file(conn=tx, numbering=pending)
            provisional = complaint.number
            assert is_provisional(provisional) and [p.complaint for p in pending] == [complaint]
            receipt = Outgoing(f"编号 {provisional}", (Choice(f"status:{provisional}", "进度"),))
            for key, chat, of_case in (("r", "u1", None), ("n", "staff", complaint)):
                await enqueue(
                    channel=Channel.WEB,
                    chat_id=chat,
                    message=receipt,
                    idempotency_key=key,
                    now=NOVEMBER,
                    complaint=of_case,
                    conn=tx,
                )
            await enqueue(  # another chat's row, not the complaint's: left alone
                channel=Channel.WEB,
                chat_id="other",
                message=Outgoing(f"x {provisional}"),
                idempotency_key="o",
                now=NOVEMBER,
                conn=tx,
            )
            assert await pending[0].take(tx, chat=(Channel.WEB.value, "u1")) == "2611-01"
    rows = {row.idempotency_key: row.payload for row in await OutboxMessage.all()}
    for key in ("r", "n"):
        assert rows[key]["text"] == "编号 2611-01"
        assert rows[key]["choices"] == [{"id": "status:2611-01", "label": "进度"}]
    assert rows["o"]["text"] == f"x {provisional}"
    assert (await Complaint.get(id=complaint.id)).number == "2611-01"
    lines = [r.getMessage() for r in caplog.records if r.name == "complaintdesk.events"]
    assert lines == ["complaint 2611-01: submit by complainant (draft → submitted)"]


async def test_the_number_is_stored_as_returned_and_a_rolled_back_filing_gives_it_back(
    db_url: str,
) -> None:
    from tortoise.transactions import in_transaction

    first = await file()
    assert (await Complaint.get(id=first.id)).number == first.number == "2611-01"

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        async with in_transaction() as tx:
            await file(user="u2", conn=tx)
            raise Abandoned  # after the number was taken: the serial goes back
    again = await file(user="u3")
    assert again.number == "2611-02"
    numbers = sorted(await Complaint.all().values_list("number", flat=True))
    assert numbers == ["2611-01", "2611-02"]  # no provisional row left behind


async def test_concurrent_filings_are_gap_free_across_the_two_digit_width(db_url: str) -> None:
    conn = connections.get("default")
    # 90 already filed this month: the next 20 run past 99 into three digits.
    await conn.execute_query(
        "INSERT INTO monthly_serial (month, last_serial) VALUES ('202611', 90)"
    )

    async def one(i: int) -> str:
        deadline = asyncio.get_running_loop().time() + WITHIN_SECONDS
        while True:
            try:
                return (await file(user=f"c{i}")).number
            except Exception as exc:  # SQLite "database is locked": retry as the shell does
                if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.01)

    numbers = await asyncio.gather(*(one(i) for i in range(20)))
    assert sorted(numbers, key=lambda n: int(n.split("-")[1])) == [
        f"2611-{n:02d}" for n in range(91, 111)
    ]
    assert "2611-100" in numbers


async def test_a_format_change_continues_the_month_and_old_numbers_still_resolve(
    db_url: str,
) -> None:
    before = await file("gov-window", category="service_attitude")
    after = await file()
    assert (before.number, after.number) == ("202611-0001", "2611-02")
    assert await Complaint.filter(number=normalise_number(before.number)).exists()


# ---------------------------------------------------------------- over HTTP


async def test_c_number_and_find_in_the_web_chat_find_a_yymm_number(
    db_url: str, tmp_path: Path
) -> None:
    async with webchat(db_url, tmp_path, profile="manufacturing") as client:
        complaint = await file()
        old = await file("gov-window", user="u2", category="service_attitude")
        assert complaint.number == "2611-01"
        for number in (complaint.number, old.number):
            shown = await client.get(f"/c/{number}?k=none")
            assert shown.status == 200 and number in await shown.text()
        assert (await client.get("/c/2611-99?k=none")).status == 404
        data = await post(client, session_id="other-device-0001", text="/find 2611-01 13812345678")
        assert "投诉 2611-01 · 已提交" in said(data)
        chat_page = await (await client.get("/webchat")).text()
        assert 'placeholder="2612-01"' in chat_page  # the find form's example


async def test_the_api_open311_and_the_desk_search_find_a_yymm_number(
    db_url: str, tmp_path: Path
) -> None:
    world = await make_world("manufacturing")
    token = (await create_token(world.supervisor, "dash", ["read"], now=NOVEMBER)).secret
    first = await file()
    second = await file(user="u2")
    conn = connections.get("default")
    tenth = hundredth = None
    for serial in (9, 99):  # 2611-10 and 2611-100: a substring search for one finds both
        await conn.execute_query(f"UPDATE monthly_serial SET last_serial = {serial}")
        tenth, hundredth = hundredth, await file(user=f"u{serial}")
    assert (first.number, second.number) == ("2611-01", "2611-02")
    assert (tenth and tenth.number, hundredth and hundredth.number) == ("2611-10", "2611-100")
    async with desk_client(db_url, tmp_path, profile="manufacturing") as client:
        auth = {"Authorization": f"Bearer {token}"}
        listed = await client.get("/api/v1/complaints", params={"q": "2611-01"}, headers=auth)
        body = await listed.json()
        assert listed.status == 200, body
        assert [c["number"] for c in body["items"]] == ["2611-01"]
        one = await client.get(f"/api/v1/complaints/{first.id}", headers=auth)
        assert (await one.json())["number"] == "2611-01"
        request = await client.get("/open311/v2/requests/2611-01.json")
        assert request.status == 200
        assert (await request.json())[0]["service_request_id"] == "2611-01"
        several = await client.get(
            "/open311/v2/requests.json", params={"service_request_id": "2611-01,2611－02,x"}
        )
        assert [r["service_request_id"] for r in await several.json()] == ["2611-01", "2611-02"]
        await give_password(world.supervisor, "sun")
        await sign_in(client, "sun")
        html = await page(client, "/desk/cases?q=2611-10")
        assert "2611-10" in html and "2611-100" not in html
        tens = await client.get("/api/v1/complaints", params={"q": "2611-10"}, headers=auth)
        assert [c["number"] for c in (await tens.json())["items"]] == ["2611-10"]


async def test_a_filing_writes_its_complaint_event_and_access_code_together(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """models.db.insert_linked (one statement on PostgreSQL): each row gets its id and its link
    to the complaint, and the save hooks run as Model.save runs them (the alarm planned, the
    event logged once numbered)."""
    from models.db import NewRow, insert_linked
    from models.entities import Event
    from models.lookup import ComplaintAccess, _code_matches, access_row, hashed_code

    code = await hashed_code()
    filed = await submit_complaint(
        profile=load_profile("manufacturing"),
        channel=Channel.WEB,
        external_id="u-linked",
        chat_id="u-linked",
        answers=MANUFACTURING,
        clock=at(),
        access=code,
    )
    stored = await Complaint.get(id=filed.id)
    assert stored.number == filed.number == "2611-01"
    assert stored.complainant_id is not None
    events = await Event.filter(complaint_id=filed.id).values_list("action", "to_state")
    assert events == [("submit", "submitted")]
    access = await ComplaintAccess.get(complaint_id=filed.id)
    assert access.code_hash == code.hashed
    assert await _code_matches(filed.id, code.code, None)  # the code opens it

    # The helper itself: two children linked to one parent, in order, on either backend.
    import models.alarms

    planned: list[Complaint] = []
    monkeypatch.setattr(models.alarms, "refresh_alarm", planned.append)
    caplog.set_level("INFO")
    conn = connections.get("default")
    parent = Complaint(**{k: getattr(stored, k) for k in ("profile", "channel", "facts")})
    parent.number, parent.state, parent.submitted_at, parent.deadlines = (
        "X-1",
        "submitted",
        NOVEMBER,
        {},
    )
    first = Event(actor_role="system", action="submit", to_state="submitted", payload={},
                  created_at=NOVEMBER)  # fmt: skip
    second = access_row(code, NOVEMBER)
    await insert_linked(
        conn,
        [NewRow(parent), NewRow(first, (("complaint", 0),)), NewRow(second, (("complaint", 0),))],
    )
    assert parent.id and first.id and second.id
    assert first.complaint_id == second.complaint_id == parent.id
    assert (await Event.get(id=first.id)).complaint_id == parent.id
    assert (await ComplaintAccess.get(id=second.id)).complaint_id == parent.id
    assert planned == [parent]  # the complaint's pre-save hook ran, once
    assert any("complaint X-1: submit" in r.getMessage() for r in caplog.records)  # post-save
