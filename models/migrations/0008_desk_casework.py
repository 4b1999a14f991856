from tortoise import migrations
from tortoise.migrations import operations as ops
from models.entities import CallbackOutcome, CallbackStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Recorded channels (phone, visit, letter, email) are new values of the Channel enum: stored as
# VARCHAR(16), so no column changes. The generator also emitted AlterField operations for the
# enum's changed description; they are left out because on SQLite they rebuild the outbox,
# dialog_session and processed_update tables and drop their indexes.


class Migration(migrations.Migration):
    dependencies = [('models', '0007_desk_list_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CallbackTask',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('idempotency_key', fields.CharField(unique=True, max_length=200)),
                ('complaint', fields.ForeignKeyField('models.Complaint', source_field='complaint_id', db_constraint=True, to_field='id', related_name='callbacks', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('script', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=CallbackStatus.OPEN, description='OPEN: open\nDONE: done\nCANCELLED: cancelled', enum_type=CallbackStatus, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('done_by', fields.ForeignKeyField('models.Staff', source_field='done_by_id', null=True, db_constraint=True, to_field='id', related_name='callbacks_done', on_delete=OnDelete.SET_NULL)),
                ('outcome', fields.CharEnumField(null=True, description='REACHED: reached\nNOT_REACHED: not_reached', enum_type=CallbackOutcome, max_length=16)),
                ('note', fields.TextField(null=True, unique=False)),
                ('survey_response', fields.ForeignKeyField('models.SurveyResponse', source_field='survey_response_id', null=True, db_constraint=True, to_field='id', related_name='callbacks', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'callback_task', 'app': 'models', 'indexes': [Index(fields=['status', 'due_at'])], 'pk_attr': 'id', 'table_description': 'A call the desk owes a complainant who has no chat: the message the chat would have'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Complaint',
            name='contact_address',
            field=fields.CharField(null=True, max_length=500),
        ),
        ops.AddField(
            model_name='Complaint',
            name='written_reply_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
