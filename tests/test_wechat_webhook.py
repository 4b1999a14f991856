"""The /wechat endpoint over real HTTP: signatures, safe mode, hostile XML, the five-second rule,
retries and a complete filing — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xmltodict
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app
from bot.wechat import MAX_BODY_BYTES, WECHAT_SENDER, WeChatSender
from models.entities import (
    Attachment,
    Channel,
    Complainant,
    DialogSession,
    ProcessedUpdate,
)
from tests.fakes.wechat_server import SAMPLES, FakeWeChat, message_xml, sign
from tests.images import jpeg
from tests.wechat_harness import running_desk, wechat_settings

OPENID = "oWeChatCitizen0001"
JPEG = jpeg("jpeg-bytes")
AMR = b"#!AMR\n" + b"\x00voice" * 40


def numbered(text: str) -> dict[str, str]:
    """The numbered options in a reply: label -> number typed to pick it."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^(\d+)\. (.+)$", text, re.M)}


async def session_version(openid: str) -> int:
    row = await DialogSession.get_or_none(channel=Channel.WECHAT, external_id=openid)
    return 0 if row is None else row.version


# ------------------------------------------------------------------ URL verification


async def test_get_echoes_echostr_for_a_good_signature(db_url: str, tmp_path: Path) -> None:
    async with running_desk(db_url, tmp_path) as desk, ClientSession() as http:
        params = {**desk.fake.signed_params(), "echostr": "4815162342"}
        async with http.get(desk.url, params=params) as response:
            assert response.status == 200
            assert await response.text() == "4815162342"
        params["signature"] = "0" * 40
        async with http.get(desk.url, params=params) as response:
            assert response.status == 403
        stale = {**desk.fake.signed_params(timestamp=int(desk.clock.timestamp()) - 301)}
        async with http.get(desk.url, params={**stale, "echostr": "x"}) as response:
            assert response.status == 403


# ------------------------------------------------------------------ the official samples


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_official_text_sample_gets_a_passive_reply(
    db_url: str, tmp_path: Path, safe: bool
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        delivery = await desk.fake.deliver(desk.url, SAMPLES["text"], safe=safe)
        assert delivery.status == 200 and delivery.reply is not None
        if safe:
            assert "<Encrypt>" in delivery.body and "CDATA[this is a test" not in delivery.body
        assert delivery.reply["ToUserName"] == "fromUser"
        assert delivery.reply["FromUserName"] == "toUser"
        assert delivery.reply["MsgType"] == "text"
        # Idle: the main menu comes back as numbered options.
        options = numbered(delivery.text or "")
        assert options["我要投诉"] == "1" and "我的投诉" in options
        assert await ProcessedUpdate.filter(update_key="wx:1234567890123456").count() == 1


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_official_image_and_voice_samples_are_downloaded_and_stored(
    db_url: str, tmp_path: Path, safe: bool
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        desk.fake.register_media(JPEG, "image/jpeg", media_id="media_id")
        image = await desk.fake.deliver(desk.url, SAMPLES["image"], safe=safe)
        assert image.status == 200
        voice_xml = SAMPLES["voice"].replace("1234567890123456", "1234567890123457")
        desk.fake.register_media(AMR, "audio/amr", "voice.amr", media_id="voice_media")
        voice_xml = voice_xml.replace("[media_id]", "[voice_media]")
        voice = await desk.fake.deliver(desk.url, voice_xml, safe=safe)
        assert voice.status == 200
        stored = await Attachment.filter(channel=Channel.WECHAT).order_by("id")
        assert [a.mime_type for a in stored] == ["image/jpeg", "audio/amr"]
        assert [a.size for a in stored] == [len(JPEG), len(AMR)]
        media_calls = desk.fake.calls_to("/cgi-bin/media/get")
        assert [c.params["media_id"] for c in media_calls] == ["media_id", "voice_media"]


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_official_location_and_event_samples(db_url: str, tmp_path: Path, safe: bool) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        welcome = await desk.fake.deliver(desk.url, SAMPLES["subscribe"], safe=safe)
        assert welcome.reply is not None and "我要投诉" in numbered(welcome.text or "")
        click = SAMPLES["click"].replace("EVENTKEY", "file").replace("123456789", "123456790")
        started = await desk.fake.deliver(desk.url, click, safe=safe)
        assert "都不是，继续投诉" in numbered(started.text or "")
        location = await desk.fake.deliver(desk.url, SAMPLES["location"], safe=safe)
        assert location.status == 200 and location.reply is not None
        reported = await desk.fake.deliver(desk.url, SAMPLES["location_event"], safe=safe)
        assert reported.status == 200
        assert await ProcessedUpdate.filter(channel=Channel.WECHAT).count() == 4


async def test_unsubscribe_is_recorded_and_subscribe_clears_it(db_url: str, tmp_path: Path) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        await Complainant.create(channel=Channel.WECHAT, external_id="FromUser", chat_id="FromUser")
        gone = await desk.fake.deliver(desk.url, SAMPLES["unsubscribe"])
        assert gone.status == 200 and gone.reply is None
        assert (await Complainant.get(external_id="FromUser")).unsubscribed is True
        back = SAMPLES["subscribe"].replace("123456789", "123456999")
        await desk.fake.deliver(desk.url, back)
        assert (await Complainant.get(external_id="FromUser")).unsubscribed is False


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_a_bad_signature_is_refused(db_url: str, tmp_path: Path, safe: bool) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        delivery = await desk.fake.push_text(desk.url, OPENID, "/start", safe=safe, tamper=True)
        assert delivery.status == 403
        assert await session_version(OPENID) == 0


async def test_a_good_signature_with_a_bad_msg_signature_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        fake = desk.fake
        params = fake.signed_params()
        encrypted = fake.crypto.encrypt_message(
            fake.text_xml(OPENID, "/start"), params["nonce"], params["timestamp"]
        )
        params.update(encrypt_type="aes", msg_signature="f" * 40)
        delivery = await fake.post_raw(desk.url, encrypted.encode(), params=params)
        assert delivery.status == 403
        assert await session_version(OPENID) == 0


async def test_a_message_encrypted_for_another_account_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        fake = desk.fake
        params = fake.signed_params()
        other = WeChatCrypto(fake.token, fake.aes_key, "wx0000000000000000")
        xml = fake.text_xml(OPENID, "/start")
        envelope = other.encrypt_message(xml, params["nonce"], params["timestamp"])
        encrypted = xmltodict.parse(envelope)["xml"]["Encrypt"]
        body = message_xml({"ToUserName": fake.account, "Encrypt": encrypted})
        params.update(
            encrypt_type="aes",
            msg_signature=sign(fake.token, params["timestamp"], params["nonce"], encrypted),
        )
        delivery = await fake.post_raw(desk.url, body.encode(), params=params)
        assert delivery.status == 403
        assert await session_version(OPENID) == 0


@pytest.mark.parametrize("skew", [-301, 301])
async def test_a_stale_timestamp_is_refused(db_url: str, tmp_path: Path, skew: int) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        stamp = int(desk.clock.timestamp()) + skew
        delivery = await desk.fake.push_text(desk.url, OPENID, "/start", timestamp=stamp)
        assert delivery.status == 403
        within = int(desk.clock.timestamp()) - 290
        delivery = await desk.fake.push_text(desk.url, OPENID, "/start", timestamp=within)
        assert delivery.status == 200


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol4;</Content><MsgId>99</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&secret;</Content><MsgId>98</MsgId></xml>"""


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
async def test_hostile_xml_is_refused(
    db_url: str, tmp_path: Path, hostile: str, safe: bool
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        delivery = await desk.fake.deliver(desk.url, hostile, safe=safe)
        assert delivery.status == 400
        assert await ProcessedUpdate.all().count() == 0


async def test_oversized_and_malformed_bodies_are_refused(db_url: str, tmp_path: Path) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        params = desk.fake.signed_params()
        padding = "x" * (MAX_BODY_BYTES + 1)
        big = message_xml({"FromUserName": OPENID, "MsgType": "text", "Content": padding})
        too_big = await desk.fake.post_raw(desk.url, big.encode(), params=params)
        assert too_big.status == 413
        broken = await desk.fake.post_raw(desk.url, b"<xml><MsgType>text", params=params)
        assert broken.status == 400
        wrong_root = await desk.fake.post_raw(desk.url, b"<html></html>", params=params)
        assert wrong_root.status == 400
        no_sender = message_xml({"MsgType": "text", "Content": "hi", "MsgId": 5})
        anonymous = await desk.fake.post_raw(desk.url, no_sender.encode(), params=params)
        assert anonymous.status == 400
        not_utf8 = "<xml><Content>投诉</Content></xml>".encode("gb18030")
        assert (await desk.fake.post_raw(desk.url, not_utf8, params=params)).status == 400


async def test_media_wechat_no_longer_has_is_answered_as_unreadable(
    db_url: str, tmp_path: Path
) -> None:
    async with running_desk(db_url, tmp_path) as desk:
        delivery = await desk.fake.deliver(desk.url, SAMPLES["image"])  # media_id never registered
        assert delivery.status == 200
        assert "无法识别" in (delivery.text or "") or "cannot read" in (delivery.text or "")
        assert await Attachment.all().count() == 0


async def test_the_application_mounts_wechat_when_configured(db_url: str, tmp_path: Path) -> None:
    async with FakeWeChat() as fake:
        settings = wechat_settings(db_url, tmp_path, fake)
        app = create_app(settings, manage_db=False)
        assert isinstance(app[WECHAT_SENDER], WeChatSender)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            delivery = await fake.push_text(str(server.make_url("/wechat")), OPENID, "/help")
            assert delivery.status == 200 and delivery.text
        finally:
            await server.close()
