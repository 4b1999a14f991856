from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_event_complaint_action_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AttachmentBlob',
            fields=[
                ('sha256', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('data', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'attachment_blob', 'app': 'models', 'pk_attr': 'sha256', 'table_description': 'Attachment bytes kept in the database (the default storage): one row per content.'},
            bases=['Model'],
        ),
    ]
