from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0013_stats_desk_export')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Complaint',
            name='recall_decision',
            field=fields.BooleanField(null=True),
        ),
        ops.AddField(
            model_name='Complaint',
            name='recall_reason',
            field=fields.TextField(null=True),
        ),
    ]
