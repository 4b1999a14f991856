"""transport (R13 道路运输服务质量投诉, R14 公交投诉服务管理制度) walked on the injectable clock:
what is not accepted, with where to go instead; the plate, time, place and facts asked; the
legal-remedy requests R13 lists; oral complaints at once, written ones in 2 working days, complex
or serious ones in 5."""

from __future__ import annotations

import pytest

from tests.profile_walk import (  # noqa: F401 (alarm_context: autouse fixture)
    Walk,
    alarm_context,
    assert_ships,
    due,
    end_of,
    local,
    screen,
    texts_to,
)

MONDAY = local("2026-11-02T10:00")


@pytest.mark.parametrize(
    ("exclusion", "words"),
    [
        ("accident", "122"),  # 交通事故
        ("crime", "110"),  # 治安和刑事案件
        ("force_majeure", "人民法院"),  # 不可抗力
        ("other_authority", "受理机构"),  # 国家法律、法规已经明确规定由其它机构受理
    ],
)
def test_not_accepted_matters_get_their_guidance(exclusion: str, words: str) -> None:
    chat = screen(assert_ships("transport"), exclusion)
    assert words in chat.said
    # The guidance comes with a way out and a way on (let staff decide); leaving files nothing.
    assert chat.where == ("screening", "screening.exclusion")
    chat.choose("screen:leave")
    assert chat.where == ("idle", None) and chat.commands == []


def test_the_form_asks_for_the_vehicle_and_offers_r13_requests() -> None:
    profile = assert_ships("transport")
    target = profile.field("target")
    assert [o.id for o in target.options or []] == ["vehicle", "staff", "department"]
    assert "车牌" in target.prompt["zh_CN"]
    requests = [o.id for o in profile.field("request_type").options or []]
    assert {"stop_harm", "accountability", "compensation"} <= set(requests)
    ids = [f.id for f in profile.intake.fields]
    assert {"incident_time", "place", "facts"} <= set(ids)
    assert all(profile.field(f).required for f in ("target", "incident_time", "place", "facts"))


async def test_at_once_then_two_or_five_working_days(db_url: str) -> None:
    walk = await Walk.of("transport")
    service = await walk.file(MONDAY, "service")
    assert due(service, "acceptance") == MONDAY  # 口头投诉，应立即进行调查
    service = await walk.accept(service, MONDAY)
    assert due(service, "resolution") == end_of("2026-11-04")  # 一般书面投诉 2 WD
    driving = await walk.accept(await walk.file(MONDAY, "safe_driving", user="u2"), MONDAY)
    assert due(driving, "resolution") == end_of("2026-11-09")  # 较为复杂和严重 5 WD
    serious = await walk.file(MONDAY, "vehicle", user="u3")
    serious = await walk.accept(serious, MONDAY, severity="major")
    assert due(serious, "resolution") == end_of("2026-11-09")
    assert "2026年11月9日 23:59" in (await texts_to("chat-u2"))[0]
    await walk.handle(await walk.file(MONDAY, "suggestion", user="u4"), MONDAY)
    sent = await walk.sweep(end_of("2026-11-04"))
    assert sent["unit_head"] == ["escalate"] and sent["handler"] == ["overdue"]
