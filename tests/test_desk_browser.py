"""The browser desk end to end in headless Chromium (Debian's package, driven by Playwright).

A real server on a random loopback port: the complainant files through the web chat's API and
follows the case in the /webchat page while the intake clerk and the handler sign in at /desk,
filter the list, open the case and accept → assign → resolve it with the mouse. Screenshots of
the sign-in, list and case pages at phone and desktop sizes go to $DESK_SCREENSHOTS (default
/tmp). Without chromium or playwright the test is skipped with the reason — except under
CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from bot.app import create_app
from config.settings import Settings
from models.entities import Complaint, Department, Staff
from models.workflow import Role, State
from tests.desk_support import PASSWORD, MovableNow, give_password
from tests.intake_script import GOV_WINDOW_FILING
from tests.staff_world import CALENDAR

SESSION = "browser-complainant-0001"
WAIT_MS = 60_000  # generous: the chat page polls every 20 s
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _browser_or_skip() -> str:
    chromium = shutil.which("chromium")
    problem = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    if chromium is None:
        problem = "Debian's chromium is not installed (apt-get install -y chromium)"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem}: CI=true needs the browser tests to run")
        pytest.skip(problem)
    assert chromium is not None
    return chromium


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def file_by_web_chat(base: str) -> None:
    """The complainant's phone: the web chat API with the session id the page will use."""
    async with ClientSession() as http:
        for n, (kind, value) in enumerate(GOV_WINDOW_FILING):
            body: dict[str, Any] = {"session_id": SESSION, "message_id": f"m{n}"}
            body["text" if kind != "choice" else "choice"] = (
                f"/{value}" if kind == "command" else value
            )
            async with http.post(f"{base}/webchat/api/message", json=body) as response:
                assert response.status == 200, await response.text()


def shots_dir() -> Path:
    path = Path(os.environ.get("DESK_SCREENSHOTS", "/tmp"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_a_case_handled_in_the_browser_while_the_complainant_follows(
    db_url: str, tmp_path: Path
) -> None:
    chromium = _browser_or_skip()
    from playwright.async_api import async_playwright, expect

    general = await Department.create(code="general", name="综合受理窗口")
    clerk = await Staff.create(name="受理员陈", role=Role.INTAKE_CLERK)
    handler = await Staff.create(name="承办人王", role=Role.HANDLER, department=general)
    await give_password(clerk, "chen")
    await give_password(handler, "wang")
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", profile="gov-window")
    app = create_app(settings, now=MovableNow(), calendar=CALENDAR, manage_db=False)
    shots = shots_dir()
    async with serve(app) as base, async_playwright() as pw:
        await file_by_web_chat(base)
        complaint = await Complaint.get()
        number = complaint.number
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            citizen = await (await browser.new_context(viewport=PHONE)).new_page()
            await citizen.add_init_script(
                f"window.localStorage.setItem('complaintdesk.session', '{SESSION}');"
            )
            await citizen.goto(f"{base}/webchat")

            desk_context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
            desk = await desk_context.new_page()
            await desk.goto(f"{base}/desk/")
            await expect(desk.get_by_role("heading", name="登录")).to_be_visible()
            await desk.screenshot(path=str(shots / "desk-signin-desktop.png"), full_page=True)

            async def sign_in(login: str) -> None:
                await desk.get_by_label("登录名").fill(login)
                await desk.get_by_label("密码").fill(PASSWORD)
                await desk.get_by_role("button", name="登录").click()
                await expect(desk.get_by_role("heading", name="案件")).to_be_visible()

            await sign_in("chen")
            await expect(desk.get_by_role("link", name=number)).to_be_visible()
            await desk.screenshot(path=str(shots / "desk-list-desktop.png"), full_page=True)
            # Filter: a search that misses, then one that finds the case.
            await desk.get_by_role("searchbox").fill("没有这样的事")
            await desk.get_by_role("button", name="搜索").click()
            await expect(desk.get_by_text("没有案件。")).to_be_visible()
            await desk.get_by_role("searchbox").fill("市民中心")
            await desk.get_by_role("button", name="搜索").click()
            await desk.get_by_role("link", name=number).click()
            await expect(desk.get_by_text("市民中心二楼")).to_be_visible()
            await desk.screenshot(path=str(shots / "desk-case-desktop.png"), full_page=True)

            # Accept: the severity is asked, as in the chat.
            accept = desk.locator("details.action").filter(has_text="受理").first
            await accept.evaluate("d => { d.open = true; }")
            await accept.locator("select[name=severity]").select_option(index=1)
            await accept.get_by_role("button", name="受理").click()
            await expect(desk.get_by_text("已完成：受理")).to_be_visible()
            await expect(citizen.get_by_text(f"您的投诉 {number} 已受理")).to_be_visible(
                timeout=WAIT_MS
            )
            # Assign to the department and its handler.
            assign = desk.locator("details.action").filter(has_text="交办").first
            await assign.evaluate("d => { d.open = true; }")
            await assign.locator("select[name=department_id]").select_option(label="综合受理窗口")
            await assign.locator("select[name=handler_id]").select_option(label="承办人王")
            await assign.get_by_role("button", name="交办").click()
            await expect(desk.get_by_text("已完成：交办")).to_be_visible()
            await expect(citizen.get_by_text("综合受理窗口")).to_be_visible(timeout=WAIT_MS)

            # The handler signs in on the same browser, acknowledges and resolves.
            await desk.get_by_role("button", name="退出登录").click()
            await sign_in("wang")
            await desk.get_by_role("link", name=number).click()
            sign = desk.locator("details.action").filter(has_text="签收").first
            await sign.evaluate("d => { d.open = true; }")
            await sign.get_by_role("button", name="签收").click()
            await expect(desk.get_by_text("已完成：签收")).to_be_visible()
            resolve = desk.locator("details.action").filter(has_text="办结答复").first
            await resolve.evaluate("d => { d.open = true; }")
            reply = "经核查，已对窗口工作人员批评教育，并向您致歉。"
            await resolve.locator("textarea[name=reply_text]").fill(reply)
            await resolve.get_by_role("button", name="办结答复").click()
            await expect(desk.get_by_text("已完成：办结答复")).to_be_visible()
            await expect(citizen.get_by_text(reply)).to_be_visible(timeout=WAIT_MS)
            assert (await Complaint.get(id=complaint.id)).state == State.REPLIED

            # Phone-sized pages of the same desk.
            phone = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
            await phone.goto(f"{base}/desk/signin")
            await phone.screenshot(path=str(shots / "desk-signin-phone.png"), full_page=True)
            await phone.get_by_label("登录名").fill("wang")
            await phone.get_by_label("密码").fill(PASSWORD)
            await phone.get_by_role("button", name="登录").click()
            await phone.goto(f"{base}/desk/cases?state=all")
            await expect(phone.get_by_role("link", name=number)).to_be_visible()
            await phone.screenshot(path=str(shots / "desk-list-phone.png"), full_page=True)
            await phone.get_by_role("link", name=number).click()
            await expect(phone.locator("dd").filter(has_text=reply)).to_be_visible()
            await phone.screenshot(path=str(shots / "desk-case-phone.png"), full_page=True)
            await citizen.screenshot(path=str(shots / "desk-webchat-phone.png"), full_page=True)
        finally:
            await browser.close()
