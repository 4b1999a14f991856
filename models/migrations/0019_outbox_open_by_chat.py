"""The open outbox rows of one chat, by a partial index (channel, chat_id) of the open rows only.

Every dialog step asks whether the person's chat has older open messages (per-chat order,
bot.replies.reply_statement). The only index that served it was (status, next_attempt_at), so
the question read every open row of every chat: with a backlog of 10 000 notifications to
staff chats (the Bot API down for a while), each citizen's step spent 2.8–3.9 ms in it instead
of 0.1–0.2. The index holds only rows still to send — rows written as sent, most replies, never
enter it — and the queries name the statuses literally, so that prepared (generic) plans can
prove they fall under its predicate. The same SQL on SQLite and PostgreSQL.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

FORWARD = (
    "CREATE INDEX IF NOT EXISTS outbox_open_by_chat ON outbox (channel, chat_id) "
    "WHERE status IN ('pending', 'sending')"
)
BACKWARD = "DROP INDEX IF EXISTS outbox_open_by_chat"


class Migration(migrations.Migration):
    dependencies = [('models', '0018_repeats_and_groups')]

    initial = False

    operations = [ops.RunSQL(FORWARD, reverse_sql=BACKWARD)]
