"""The aiohttp application: database lifetime, the conversation, the web chat and the channels.

Workers are stateless: every worker built by `create_app` on the same database serves any
person, so scaling out is N of them behind a load balancer.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from bot.conversation import Conversation, utc_now
from bot.health import setup_health
from bot.logs import log_context
from bot.metrics import setup_metrics
from bot.outbox import Sender, setup_dispatcher
from bot.storage import configure_storage
from config.profiles import Profile, load_profile
from config.settings import Settings
from handlers.notify import install as install_notification_texts
from models.db import close_db, init_db
from models.entities import Channel
from scheduler.calendar import WorkingCalendar
from web.api import setup_api
from web.desk import setup_desk
from web.webchat import setup_webchat

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
PROFILE = web.AppKey("profile", Profile)
CONVERSATION = web.AppKey("conversation", Conversation)

# Uploads are streamed by the web chat; other bodies stay small.
CLIENT_MAX_SIZE = 1024 * 1024
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


# A row failing with 5xx or network errors is given up after this many tries (bot.outbox backs
# off 1-2 s, doubling up to 5-10 min): 16 tries span 38-77 minutes, so a platform outage of
# minutes loses no reply; the dispatcher's own default (8, 2-4 minutes) lost the reply each
# chat was waiting for when the Bot API was down for 5 minutes (bench/faults.py outage).
OUTBOX_MAX_ATTEMPTS = 16


def create_app(
    settings: Settings,
    *,
    profile: Profile | None = None,
    calendar: WorkingCalendar | None = None,
    now: Callable[[], datetime] | None = None,
    manage_db: bool = True,
    scheduler: bool = False,
) -> web.Application:
    """Build a worker. With `manage_db` (the default) it migrates and opens the database on
    startup and closes it on cleanup; tests that already opened one pass False. `scheduler`
    runs the deadline sweep and the other periodic jobs in this worker (`run` and `demo`).

    Order: the database opens before anything else starts (the outbox dispatcher, channel
    polling) and closes after everything registered here has stopped.
    """
    profile = profile or load_profile(settings.profile, settings.profiles_dir)
    install_notification_texts()  # the models queue notifications worded by handlers/
    configure_storage(settings.attachment_storage, settings.data_dir)
    calendar = calendar or WorkingCalendar.from_settings(settings)
    conversation = Conversation(settings, profile, calendar, now=now or utc_now)
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[request_ids])
    app[SETTINGS] = settings
    app[PROFILE] = profile
    app[CONVERSATION] = conversation
    if manage_db:
        # Ahead of aiohttp's cleanup contexts, which run first on startup (the dispatcher).
        app.on_startup.insert(0, _open_database)
    app.router.add_get("/", _to_webchat)
    setup_health(app, settings)
    setup_metrics(
        app,
        host=settings.host,
        port=settings.metrics_port,
        idle_minutes=settings.dialog_idle_minutes,
    )
    setup_webchat(app, conversation, settings)
    setup_desk(app, conversation, settings, profile)
    setup_api(app)
    senders = _setup_channels(app, conversation, settings)
    if senders:
        # Notifications queued by any worker go out through the channels this one serves.
        setup_dispatcher(app, senders, max_attempts=OUTBOX_MAX_ATTEMPTS)
    if scheduler:
        from scheduler.runner import setup_scheduler

        setup_scheduler(app, settings, profile, now=now or utc_now, calendar=calendar)
    if manage_db:
        app.on_cleanup.append(_close_database)
    return app


def _setup_channels(
    app: web.Application, conversation: Conversation, settings: Settings
) -> dict[Channel, Sender]:
    """Mount each messaging platform whose settings are present; returns their outbox senders.

    Imported only when configured, so the web chat runs without the platform libraries'
    adapters, and no module has to import both python-telegram-bot and wechatpy.
    """
    senders: dict[Channel, Sender] = {}
    if settings.telegram_token:
        from bot.telegram import setup_telegram

        telegram = setup_telegram(app, conversation, settings)
        senders[Channel.TELEGRAM] = telegram.sender()
    if settings.wechat_token:
        from bot.wechat import WECHAT_SENDER, setup_wechat

        setup_wechat(app, conversation, settings)
        if WECHAT_SENDER in app:  # outbound needs the app id and secret as well
            senders[Channel.WECHAT] = app[WECHAT_SENDER]
    return senders


async def _open_database(app: web.Application) -> None:
    await init_db(app[SETTINGS].database_url)


async def _close_database(app: web.Application) -> None:
    await close_db()


async def _to_webchat(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/webchat")


@web.middleware
async def request_ids(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Every line logged while handling a request names it (the proxy's X-Request-Id, if any)."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if REQUEST_ID.fullmatch(given) else secrets.token_hex(6)
    with log_context(request=request_id):
        response = await handler(request)
    response.headers.setdefault("X-Request-Id", request_id)
    return response
