"""/desk/stats in headless Chromium (Debian's package, driven by Playwright): a supervisor signs
in, opens the statistics, filters by department, downloads the monthly report and the period's
list as CSV; screenshots (screen and print media) go to $DESK_SCREENSHOTS (default /tmp)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.app import create_app
from config.settings import Settings
from models.alarms import set_alarm_context
from tests.desk_support import PASSWORD, MovableNow, give_password
from tests.scheduler_support import CALENDAR, CONTEXT
from tests.stats_world import NOW, seed
from tests.test_desk_browser import DESKTOP, _browser_or_skip, serve, shots_dir


@pytest.fixture(autouse=True)
def alarm_context() -> Iterator[None]:
    set_alarm_context(CONTEXT)
    yield
    set_alarm_context(None)


async def test_statistics_in_the_browser(db_url: str, tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    from playwright.async_api import async_playwright, expect

    world = await seed()
    await give_password(world.supervisor, "sup")
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", profile="conduct")
    app = create_app(settings, now=MovableNow(NOW), calendar=CALENDAR, manage_db=False)
    shots = shots_dir()
    async with serve(app) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(
                viewport=DESKTOP, locale="zh-CN", accept_downloads=True
            )
            desk = await context.new_page()
            errors: list[str] = []
            desk.on(  # every page and file loads (the browser's own favicon guess aside)
                "response",
                lambda r: (
                    errors.append(r.url)
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            await desk.goto(f"{base}/desk/")
            await desk.get_by_label("登录名").fill("sup")
            await desk.get_by_label("密码").fill(PASSWORD)
            await desk.get_by_role("button", name="登录").click()
            await desk.get_by_role("link", name="统计").click()
            await expect(
                desk.get_by_role("heading", name="统计", exact=False).first
            ).to_be_visible()
            await desk.get_by_role("link", name="上月").click()
            await expect(
                desk.locator("#overdue").get_by_text(world.cases["c2"].number)
            ).to_be_visible()
            await expect(desk.locator("svg.chart").first).to_be_visible()
            assert await desk.locator("svg.chart").count() == 7
            await expect(
                desk.locator("#respondents").get_by_text("待岗（四次及以上）")
            ).to_be_visible()
            await desk.screenshot(path=str(shots / "desk-stats-desktop.png"), full_page=True)
            await desk.emulate_media(media="print")
            await desk.screenshot(path=str(shots / "desk-stats-print.png"), full_page=True)
            await desk.emulate_media(media="screen")
            # The department filter: 二科 leads only c3 in November.
            await desk.locator("select[name=department]").select_option(label="二科")
            await desk.get_by_role("button", name="应用").click()
            await expect(
                desk.locator("#overdue").get_by_text("没有超期未办的投诉。")
            ).to_be_visible()
            async with desk.expect_download() as waiting:
                await desk.get_by_role("link", name="下载月报").click()
            download = await waiting.value
            assert download.suggested_filename == "complaints-monthly-2026-11-zh_CN.xlsx"
            report = tmp_path / download.suggested_filename
            await download.save_as(report)
            assert "投诉清单" in load_workbook(report).sheetnames
            assert errors == []
        finally:
            await browser.close()
