"""The web chat on a phone-sized page (390×844) in headless Chromium (Debian's package, driven by
Playwright): file a complaint with the thumb, get a staff message pushed by server-sent events
(the poll blocked), close the browser, and find the complaint again from a new browser context
(another device) by its number and phone, then open its progress page.

Tap targets are measured (every visible button and link ≥ 44 px both ways). Screenshots go to
$WEBCHAT_SCREENSHOTS (default /tmp/shots-webchat). Without chromium or playwright the test is
skipped with the reason — except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.actions import Actor, Clock, act
from models.entities import Complaint, Department, Staff
from models.workflow import Action, Role
from tests.images import jpeg
from tests.intake_script import GOV_WINDOW_FILING, PHOTOS_STEP
from tests.staff_world import CALENDAR, SHANGHAI
from tests.test_desk_browser import _browser_or_skip, serve

PHONE = {"width": 390, "height": 844}
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 60_000
PHONE_TYPED = "138 1234 5678"
# What a thumb needs (WCAG 2.5.5 / Apple HIG).
MIN_TAP = 44


def shots_dir() -> Path:
    path = Path(os.environ.get("WEBCHAT_SCREENSHOTS", "/tmp/shots-webchat"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def too_small(page: Any, selector: str) -> list[str]:
    """Visible elements matching `selector` smaller than MIN_TAP in either direction."""
    small = []
    for element in await page.locator(selector).all():
        if not await element.is_visible():
            continue
        box = await element.bounding_box()
        if box and (box["width"] < MIN_TAP or box["height"] < MIN_TAP):
            label = (await element.text_content() or "").strip()
            small.append(f"{selector} {label!r} {box['width']:.0f}×{box['height']:.0f}")
    return small


CHAT_TARGETS = (
    "header button",
    "#send",
    "#log .choices button:not([disabled])",
    "#log .edit-menu button",
    ".receipt button",
    ".receipt a",
    ".foot a",
    "dialog[open] button",
)


async def chat_too_small(page: Any) -> list[str]:
    found: list[str] = []
    for selector in CHAT_TARGETS:
        found += await too_small(page, selector)
    return found


async def bot_count(page: Any) -> int:
    return int(await page.locator("#log .msg.bot").count())


async def answered_after(page: Any, before: int) -> None:
    """A new bot message arrived and the page is no longer busy (the page's CSP forbids eval,
    so this waits with locators rather than wait_for_function)."""
    from playwright.async_api import expect

    await expect(page.locator("#log .msg.bot").nth(before)).to_be_attached(timeout=WAIT_MS)
    await expect(page.locator("#send")).to_be_enabled(timeout=WAIT_MS)


async def step(page: Any, kind: str, value: str) -> None:
    before = await bot_count(page)
    if kind == "choice":
        await page.locator(f'#log .choices button[data-choice="{value}"]:not([disabled])').click()
    else:
        await page.locator("#text").fill(f"/{value}" if kind == "command" else value)
        await page.locator("#text").press("Enter")
    await answered_after(page, before)


async def staff_asks_for_material(number: str) -> None:
    """A handler asks the complainant for material: a message queued for their web chat."""
    clock = Clock(CALENDAR, SHANGHAI, datetime.now(UTC))
    from config.profiles import load_profile

    profile = load_profile("gov-window")
    department = await Department.create(code="window", name="窗口服务科")
    handler = await Staff.create(name="王五", role=Role.HANDLER, department=department)
    clerk = Actor(Role.INTAKE_CLERK)
    complaint = await Complaint.get(number=number)
    await act(complaint.id, Action.ACCEPT, clerk, profile=profile, clock=clock)
    assign = {"department_id": department.id, "handler_id": handler.id}
    await act(complaint.id, Action.ASSIGN, clerk, profile=profile, clock=clock, payload=assign)
    acting = Actor(Role.HANDLER, staff=handler)
    await act(complaint.id, Action.ACKNOWLEDGE, acting, profile=profile, clock=clock)
    await act(
        complaint.id,
        Action.REQUEST_MATERIAL,
        acting,
        profile=profile,
        clock=clock,
        payload={"question": "请提供受理回执照片"},
    )


async def test_file_on_a_phone_then_find_it_from_another_device(
    db_url: str, tmp_path: Path
) -> None:
    chromium = _browser_or_skip()
    from playwright.async_api import async_playwright, expect

    from bot.app import create_app
    from config.settings import Settings

    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", profile="gov-window")
    app = create_app(settings, calendar=CALENDAR, manage_db=False)
    shots = shots_dir()
    async with serve(app) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        try:
            # ---------------------------------------------------------------- the phone
            phone = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
            await phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
            page = await phone.new_page()
            blocked_polls: list[str] = []

            async def block_poll(route: Any) -> None:
                blocked_polls.append(route.request.url)
                await route.abort()

            await page.goto(f"{base}/webchat")
            await expect(page.locator('[data-choice="menu:new"]')).to_be_visible()
            await expect(page.get_by_role("link", name="个人信息保护说明")).to_be_visible()
            await page.screenshot(path=str(shots / "01-menu.png"))
            problems = await chat_too_small(page)

            location_shown = photo_shown = 0
            for index, (kind, value) in enumerate(GOV_WINDOW_FILING):
                if index == PHOTOS_STEP:
                    await page.locator("#file").set_input_files(
                        files=[{"name": "door.jpg", "mimeType": "image/jpeg", "buffer": jpeg("d")}]
                    )
                    await expect(page.locator("#log .msg.me img")).to_be_visible()
                    await expect(page.locator("#send")).to_be_enabled(timeout=WAIT_MS)
                    await page.screenshot(path=str(shots / "03-photos.png"))
                if await page.locator("#log .choices button.locate:not([disabled])").count():
                    location_shown += 1
                    await page.screenshot(path=str(shots / "02-place.png"))
                if await page.locator("#log .choices button.upload:not([disabled])").count():
                    photo_shown += 1
                    upload = page.locator("#log .choices button.upload").last
                    await expect(upload).to_have_text("上传照片")
                if value == "confirm":
                    await page.screenshot(path=str(shots / "04-summary.png"))
                    toggles = page.locator("#log .choices button.edit-toggle:not([disabled])")
                    await expect(toggles).to_have_count(1)
                    await expect(toggles).to_have_text("修改…")
                    menu = page.locator("#log .edit-menu").last
                    await expect(menu).to_be_hidden()
                    await toggles.click()
                    await expect(menu).to_be_visible()
                    assert await menu.locator("button").count() > 5
                    await page.screenshot(path=str(shots / "05-edit-menu.png"))
                    problems += await chat_too_small(page)
                    await toggles.click()
                    submit = page.locator('#log .choices button[data-choice="confirm"]').last
                    assert "primary" in (await submit.get_attribute("class") or "")
                    cancel = page.locator('#log .choices button[data-choice="cancel"]').last
                    assert "secondary" in (await cancel.get_attribute("class") or "")
                problems += await chat_too_small(page)
                await step(page, kind, value)
            assert location_shown == 1, "the location button only when the place is asked"
            assert photo_shown == 1, "上传照片 only when photos are asked"

            # The receipt: the number large, on one line, copyable.
            receipt = page.locator("#log .receipt").last
            await expect(receipt).to_be_visible()
            number = (await receipt.locator(".receipt-number").text_content() or "").strip()
            assert re.fullmatch(r"\d{6}-\d{4}", number), number
            assert await Complaint.filter(number=number).exists()
            box = await receipt.locator(".receipt-number").bounding_box()
            size = await receipt.locator(".receipt-number").evaluate(
                "e => parseFloat(getComputedStyle(e).fontSize)"
            )
            assert box and size >= 28 and box["height"] < 2 * size, (box, size)
            await receipt.get_by_role("button", name="复制").click()
            await expect(receipt.get_by_role("button", name="已复制")).to_be_visible()
            assert await page.evaluate("navigator.clipboard.readText()") == number
            await expect(receipt.locator("img.receipt-qr")).to_be_visible()
            await receipt.scroll_into_view_if_needed()
            await page.screenshot(path=str(shots / "06-receipt.png"))
            problems += await chat_too_small(page)

            # Numbers and dates in the chat are never broken inside: each token on one line.
            broken = await page.evaluate(
                """() => [...document.querySelectorAll('#log span.num')]
                    .filter(s => s.getClientRects().length > 1).map(s => s.textContent)"""
            )
            assert broken == []

            # A staff message is pushed (server-sent events) while every poll is refused.
            await page.route("**/webchat/api/updates", block_poll)
            await staff_asks_for_material(number)
            await expect(
                page.locator("#log .msg.bot", has_text="请提供受理回执照片")
            ).to_be_visible(timeout=WAIT_MS)
            await page.screenshot(path=str(shots / "07-pushed.png"))

            # 取消 of a draft asks first; 继续填写 keeps it.
            await step(page, "command", "start")
            before = await bot_count(page)
            await page.locator('#log .choices button[data-choice="cancel"]:not([disabled])').click()
            dialog = page.locator("#confirm")
            await expect(dialog).to_be_visible()
            await expect(page.locator("#confirm-text")).to_have_text("放弃正在填写的投诉吗？")
            await page.screenshot(path=str(shots / "08-cancel-asks.png"))
            problems += await chat_too_small(page)
            await page.locator("#confirm-no").click()
            await expect(dialog).to_be_hidden()
            assert await bot_count(page) == before, "keeping the draft sends nothing"

            # 新会话 asks first; the filed complaint stays under 我的投诉.
            await page.locator("#restart").click()
            await expect(page.locator("#confirm-text")).to_contain_text("我的投诉")
            await page.locator("#confirm-yes").click()
            await expect(page.locator("#log .msg.bot").last).to_contain_text("请问您要办理什么")
            await expect(page.locator("#log .msg.me")).to_have_count(0)
            await page.locator("#mine").click()
            await expect(page.locator("#mine-list .mine-number")).to_have_text([number])
            await page.screenshot(path=str(shots / "09-mine.png"))
            await phone.close()

            # ---------------------------------------------------------------- another device
            other = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
            page = await other.new_page()
            await page.goto(f"{base}/webchat")
            await expect(page.locator('[data-choice="menu:new"]')).to_be_visible()
            await page.locator("#mine").click()
            await expect(page.locator("#mine-empty")).to_be_visible()
            await page.locator("#find-number").fill(number)
            await page.locator("#find-proof").fill("139 0000 0000")
            await page.locator("#find-button").click()
            await expect(page.locator("#find-problem")).to_have_text(
                "电话号码或查询码与该投诉不符。"
            )
            await page.locator("#find-proof").fill(PHONE_TYPED)
            await page.locator("#find-button").click()
            await expect(page.locator("#mine-list .mine-number")).to_have_text([number])
            await expect(page.locator("#mine-list .mine-state")).to_have_text(["待您补充材料"])
            await page.screenshot(path=str(shots / "10-found-elsewhere.png"))
            problems += await too_small(page, "#mine-panel button")
            problems += await too_small(page, "#mine-panel a")

            # Its progress page: nothing personal before the check, the history after.
            link = page.locator("#mine-list a").first
            await page.goto(base + (await link.get_attribute("href") or ""))
            await expect(page.locator(".number-big")).to_have_text(number)
            content = await page.content()
            assert "李雷" not in content and "13812345678" not in content
            await expect(page.locator("#private")).to_have_count(0)
            await page.screenshot(path=str(shots / "11-progress-public.png"), full_page=True)
            problems += await too_small(page, "button, .langs a, .links a")
            await page.locator("#proof").fill(PHONE_TYPED)
            await page.get_by_role("button", name="查看").click()
            await expect(page.locator("#private")).to_be_visible()
            await expect(page.locator("#private .history")).to_contain_text("已受理")
            await expect(page.locator("#private .history")).to_contain_text("请提供受理回执照片")
            assert "李雷" not in await page.content()
            await page.screenshot(path=str(shots / "12-progress-checked.png"), full_page=True)
            await other.close()
            assert problems == [], problems
        finally:
            await browser.close()
