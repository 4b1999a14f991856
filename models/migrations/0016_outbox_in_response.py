from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0015_respondent_statement")]

    initial = False

    operations = [
        ops.AddField(
            model_name="OutboxMessage",
            name="in_response",
            field=fields.BooleanField(default=False),
        ),
    ]
