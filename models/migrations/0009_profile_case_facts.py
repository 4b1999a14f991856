from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_desk_casework')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Complaint',
            name='complexity',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name='Complaint',
            name='intake_extra',
            field=fields.JSONField(null=True, default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
