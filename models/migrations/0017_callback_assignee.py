from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0016_outbox_in_response')]

    initial = False

    operations = [
        ops.AddField(
            model_name='CallbackTask',
            name='assignee',
            field=fields.ForeignKeyField('models.Staff', source_field='assignee_id', null=True, db_constraint=True, to_field='id', related_name='callbacks_assigned', on_delete=OnDelete.SET_NULL),
        ),
    ]
