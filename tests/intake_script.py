"""A complete gov-window filing as (kind, value) steps, shared by the shell's tests.

The same answers as tests/dialog_chat.py's `file_complaint_up_to`, expressed as what a channel
sends: ("command", name), ("choice", choice id) or ("text", typed text).
"""

from __future__ import annotations

GOV_WINDOW_FILING: list[tuple[str, str]] = [
    ("command", "start"),
    ("choice", "screen:none"),
    ("choice", "opt:service_attitude"),
    ("choice", "opt:rude"),
    ("choice", "opt:staff"),
    ("text", "3号窗口 工号1024"),
    ("text", "昨天下午3点"),
    ("text", "市民中心二楼"),
    ("text", "工作人员拒绝受理我的材料，并且态度恶劣，大声呵斥。"),
    ("choice", "opt:apology"),
    ("choice", "skip"),
    ("choice", "skip"),
    ("choice", "skip"),  # grounds (理由)
    ("choice", "opt:no"),
    ("choice", "privacy:ok"),  # the privacy notice before name and phone
    ("text", "李雷"),
    ("text", "138 1234 5678"),
    ("choice", "skip"),  # organisation (单位名称)
    ("choice", "done"),  # the photos step
    ("choice", "confirm"),  # the summary
]
# Index in GOV_WINDOW_FILING of the photos step (send photos before this "done").
PHOTOS_STEP = 18
