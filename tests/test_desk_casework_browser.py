"""A phoned-in complaint from record to return visit to closed, on the desk alone, in headless
Chromium (Debian's package through Playwright): the intake clerk records the call on the desk
form, the case is handled, the return-visit call is made from the "to call back" list with the
scores entered there, and the register is printed (HTML and PDF). Screenshots go to
$DESK_SCREENSHOTS (default /tmp). Skipped without chromium, except under CI=true.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import ClientSession

from bot.app import create_app
from config.profiles import load_profile
from config.settings import Settings
from models.actions import Actor, act
from models.alarms import AlarmContext, profile_loader
from models.entities import (
    CallbackStatus,
    CallbackTask,
    Channel,
    Complaint,
    Department,
    Staff,
    SurveyResponse,
)
from models.workflow import Action, Role, State
from scheduler.jobs import sweep
from tests.desk_support import PASSWORD, MovableNow, give_password
from tests.staff_world import CALENDAR, SHANGHAI, T0, clock
from tests.test_desk_browser import DESKTOP, _browser_or_skip, serve, shots_dir

WAIT_MS = 60_000


async def test_phone_complaint_recorded_handled_revisited_by_phone_and_printed(
    db_url: str, tmp_path: Path
) -> None:
    chromium = _browser_or_skip()
    from playwright.async_api import async_playwright, expect

    profile = load_profile("gov-window")
    general = await Department.create(code="general", name="综合受理窗口")
    clerk = await Staff.create(name="受理员陈", role=Role.INTAKE_CLERK, department=general)
    handler = await Staff.create(name="承办人王", role=Role.HANDLER, department=general)
    supervisor = await Staff.create(name="督查员孙", role=Role.SUPERVISOR)
    await give_password(clerk, "chen")
    await give_password(supervisor, "sun")
    now = MovableNow(T0)
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", profile="gov-window")
    app = create_app(settings, now=now, calendar=CALENDAR, manage_db=False)
    shots = shots_dir()
    async with serve(app) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
            desk = await context.new_page()
            desk.set_default_timeout(WAIT_MS)

            async def sign_in(login: str) -> None:
                await context.clear_cookies()
                await desk.goto(f"{base}/desk/signin")
                await desk.get_by_label("登录名").fill(login)
                await desk.get_by_label("密码").fill(PASSWORD)
                async with desk.expect_navigation():
                    await desk.get_by_role("button", name="登录").click()

            await sign_in("chen")
            # The call comes in: the clerk fills the chat's form on one page.
            await desk.locator("nav.nav").get_by_role("link", name="代录投诉").click()
            await expect(desk.get_by_role("heading", name="代录投诉")).to_be_visible()
            form = desk.locator("#record-form")
            await form.locator("select[name=channel]").select_option("phone")
            await form.locator("select[name=category]").select_option("service_attitude")
            await form.locator("select[name='category.sub']").select_option("rude")
            await form.locator("select[name=target]").select_option("department")
            await form.locator("input[name='target.text']").fill("不动产登记窗口")
            await form.locator("input[name=incident_time]").fill("今天 9:30")
            await form.locator("input[name=place]").fill("市民中心 3 楼 12 号窗口")
            await form.locator("textarea[name=facts]").fill("太短")
            await form.locator("select[name=request_type]").select_option("explanation")
            await form.locator("input[name=name]").fill("李四")
            await form.locator("input[name=phone]").fill("139 0013 9000")
            await form.locator("input[name=address]").fill("幸福路 8 号 2 单元 301 室")
            async with desk.expect_navigation():
                await form.get_by_role("button", name="登记投诉").click()
            # The chat's own refusal, next to the field; what was typed stays.
            await expect(desk.get_by_text("请再写详细一些")).to_be_visible()
            await form.locator("textarea[name=facts]").fill(
                "办理不动产登记时，窗口工作人员态度生硬，拒绝解释需要补交哪些材料。"
            )
            await desk.screenshot(path=str(shots / "casework-record-form.png"), full_page=True)
            async with desk.expect_navigation():
                await form.get_by_role("button", name="登记投诉").click()
            await expect(desk.get_by_text("请将编号告知投诉人")).to_be_visible()
            complaint = await Complaint.get()
            assert complaint.channel == Channel.PHONE
            assert complaint.contact_phone == "+8613900139000"

            # Handled (the case page is desk-core's; the same workflow actions run here).
            at = clock()
            desk_clerk = Actor(Role.INTAKE_CLERK, clerk)
            await act(complaint.id, Action.ACCEPT, desk_clerk, profile=profile, clock=at)
            await act(
                complaint.id,
                Action.ASSIGN,
                desk_clerk,
                profile=profile,
                clock=at,
                payload={"department_id": general.id, "handler_id": handler.id},
            )
            worker = Actor(Role.HANDLER, handler)
            await act(complaint.id, Action.ACKNOWLEDGE, worker, profile=profile, clock=at)
            await act(
                complaint.id,
                Action.RESOLVE,
                worker,
                profile=profile,
                clock=at,
                payload={"reply_text": "经核查，已对当班窗口人员批评教育，并公示补正材料清单。"},
            )
            await act(complaint.id, Action.NOTIFY_RESULT, worker, profile=profile, clock=at)
            context_ = AlarmContext(CALENDAR, SHANGHAI, profile_loader(profile))
            report = await sweep(T0 + timedelta(days=3), profile=profile, context=context_)
            assert report.surveys_sent == 1
            survey = await CallbackTask.get(complaint_id=complaint.id, kind="survey")
            now.advance(timedelta(days=3))  # the desk's clock follows the sweep's
            await sign_in("chen")

            # The return visit by phone, from the list.
            await desk.locator("nav.nav").get_by_role("link", name="待回电").click()
            card = desk.locator(f"#task-{survey.id}")
            await expect(card.get_by_text("对处理结果的满意程度")).to_be_visible()
            await desk.screenshot(path=str(shots / "casework-callbacks.png"), full_page=True)
            await card.get_by_label("已联系上").check()
            await card.locator("select[name=result_score]").select_option("9")
            await card.locator("select[name=attitude_score]").select_option("10")
            await card.locator("textarea[name=comment]").fill("满意，感谢回访")
            async with desk.expect_navigation():
                await card.get_by_role("button", name="保存结果").click()
            await expect(desk.get_by_text("案件已结案")).to_be_visible()
            closed = await Complaint.get(id=complaint.id)
            assert closed.state == State.CLOSED
            # The calls never made before the return visit are moot now.
            assert not await CallbackTask.filter(
                complaint_id=complaint.id, status=CallbackStatus.OPEN
            ).exists()
            answer = await SurveyResponse.get(complaint_id=complaint.id)
            assert (answer.result_score, answer.attitude_score) == (9, 10)

            # Print the register (a closed case: the supervisor's desk).
            await sign_in("sun")
            await desk.goto(f"{base}/desk/cases/{complaint.id}/register")
            await expect(desk.get_by_role("heading", name="投诉登记表")).to_be_visible()
            for text in ("李四", "电话", "受理员陈", "满意，感谢回访", "经核查"):
                await expect(desk.get_by_text(text).first).to_be_visible()
            await desk.screenshot(path=str(shots / "casework-register.png"), full_page=True)
            cookies = {c["name"]: c["value"] for c in await context.cookies()}
            async with ClientSession(cookies=cookies) as http:
                async with http.get(f"{base}/desk/cases/{complaint.id}/register.pdf") as pdf:
                    assert pdf.status == 200 and pdf.content_type == "application/pdf"
                    data = await pdf.read()
            assert data.startswith(b"%PDF")
            (shots / "casework-register.pdf").write_bytes(data)
        finally:
            await browser.close()
