from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_attachment_blob')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DeskCredential',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.OneToOneField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='desk_credential', on_delete=OnDelete.CASCADE)),
                ('login', fields.CharField(unique=True, max_length=40)),
                ('password_hash', fields.CharField(max_length=255)),
                ('invite_code', fields.CharField(null=True, max_length=64)),
                ('password_set_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'desk_credential', 'app': 'models', 'pk_attr': 'id', 'table_description': "A staff member's browser-desk login name and password hash."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeskSession',
            fields=[
                ('token_hash', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='desk_sessions', on_delete=OnDelete.CASCADE)),
                ('csrf_token', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('user_agent', fields.CharField(null=True, max_length=200)),
            ],
            options={'table': 'desk_session', 'app': 'models', 'indexes': [Index(fields=['staff_id'])], 'pk_attr': 'token_hash', 'table_description': "One signed-in browser. `token_hash` is the SHA-256 of the cookie's token."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DeskSignInThrottle',
            fields=[
                ('login', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('failures', fields.IntField(default=0)),
                ('wait_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_failure_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'desk_sign_in_throttle', 'app': 'models', 'pk_attr': 'login', 'table_description': 'Consecutive failed sign-ins for one login name as typed, known or not.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Staff',
            name='invite_valid_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
