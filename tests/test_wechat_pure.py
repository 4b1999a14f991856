"""The WeChat adapter's pure parts: rendering, splitting, signatures, keys and parsing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from wechatpy import parse_message

from bot.wechat import (
    UntrustedXmlError,
    menu_definition,
    parse_untrusted_xml,
    passive_reply_xml,
    render_text,
    signature_matches,
    split_text,
    text_incoming,
    timestamp_fresh,
    update_key,
    wechat_signature,
)
from handlers.messages import Choice, Outgoing

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_messages_are_joined_and_choices_numbered() -> None:
    replies = [
        Outgoing("已收到。"),
        Outgoing("请选择投诉类别。", (Choice("opt:a", "服务态度"), Choice("back", "返回"))),
    ]
    assert render_text(replies) == "已收到。\n\n请选择投诉类别。\n1. 服务态度\n2. 返回"
    assert render_text([]) == ""


def test_long_text_is_split_at_line_ends_within_the_byte_limit() -> None:
    lines = [f"第{n}行：" + "投诉内容" * 20 for n in range(40)]
    text = "\n".join(lines)
    pieces = split_text(text, 2048)
    assert len(pieces) > 1
    assert all(len(p.encode()) <= 2048 for p in pieces)
    assert "\n".join(pieces) == text  # nothing lost, cut only where a line ended
    assert split_text("短") == ["短"]
    unbroken = "字" * 1000  # 3000 bytes without a line end: cut between characters
    assert "".join(split_text(unbroken, 2048)) == unbroken


def test_signatures_follow_wechats_sorted_sha1() -> None:
    # The sorted concatenation of token, timestamp and nonce, SHA-1 in hex.
    expected = hashlib.sha1("".join(sorted(["tok", "1700000000", "42"])).encode()).hexdigest()
    assert wechat_signature("tok", "1700000000", "42") == expected
    assert signature_matches(expected, expected.upper())
    assert not signature_matches(expected, None)
    assert not signature_matches(expected, "0" * 40)


def test_timestamps_within_five_minutes_are_fresh() -> None:
    stamp = int(NOW.timestamp())
    assert timestamp_fresh(str(stamp - 300), NOW)
    assert timestamp_fresh(str(stamp + 300), NOW)
    assert not timestamp_fresh(str(stamp - 301), NOW)
    assert not timestamp_fresh(str(stamp + 301), NOW)
    assert not timestamp_fresh("", NOW) and not timestamp_fresh("-5", NOW)
    assert not timestamp_fresh("1e9", NOW)
    assert timestamp_fresh(str(int((NOW - timedelta(seconds=10)).timestamp())), NOW)


def test_update_keys() -> None:
    assert update_key({"MsgId": "1234567890123456", "FromUserName": "o1"}) == "wx:1234567890123456"
    click = {"FromUserName": "o1", "CreateTime": "123456789", "Event": "CLICK", "EventKey": "file"}
    assert update_key(click) == "wx:o1:123456789:CLICK:file"
    assert update_key({**click, "EventKey": "status"}) != update_key(click)


def test_typed_slash_commands_become_commands() -> None:
    common = {"channel": "wechat", "user_id": "o1"}
    status = text_incoming("/status", **common)
    assert (status.kind, status.command, status.command_args) == ("command", "status", "")
    start = text_incoming(" /START inv_abc ", **common)
    assert (start.command, start.command_args) == ("start", "inv_abc")
    plain = text_incoming("3号窗口 / 工号1024", **common)
    assert plain.kind == "text" and plain.text == "3号窗口 / 工号1024"


def test_only_plain_wechat_xml_is_parsed() -> None:
    fields = parse_untrusted_xml(b"<xml><MsgType><![CDATA[text]]></MsgType><MsgId>7</MsgId></xml>")
    assert fields == {"MsgType": "text", "MsgId": "7"}
    with pytest.raises(UntrustedXmlError):
        parse_untrusted_xml(b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><A>&a;</A></xml>')
    with pytest.raises(UntrustedXmlError):
        parse_untrusted_xml(b"<!DOCTYPE xml><xml/>")
    with pytest.raises(UntrustedXmlError):
        parse_untrusted_xml(b"<root><A>1</A></root>")
    with pytest.raises(UntrustedXmlError):
        parse_untrusted_xml(b"<xml><A>1</xml>")


@pytest.mark.parametrize("lang", ["zh_CN", "zh_TW", "en"])
def test_menu_names_fit_wechats_16_byte_limit(lang: str) -> None:
    menu = menu_definition(lang)
    assert [b["key"] for b in menu["button"]] == ["file", "status", "help"]
    assert all(0 < len(b["name"].encode()) <= 16 for b in menu["button"])


def test_the_passive_reply_survives_cdata_terminators_in_peoples_words() -> None:
    message = parse_message(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content>"
        "<MsgId>1</MsgId></xml>"
    )
    said = "事情经过：a]]><b>&amp;\x07结束"
    fields = parse_untrusted_xml(passive_reply_xml(message, said).encode())
    assert fields["Content"] == "事情经过：a]]><b>&amp;结束"
    assert (fields["ToUserName"], fields["FromUserName"]) == ("o1", "gh_1")
