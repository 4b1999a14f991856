from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from models.entities import Channel


class Migration(migrations.Migration):
    dependencies = [('models', '0010_api_tokens')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ComplaintAccess',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('complaint', fields.OneToOneField('models.Complaint', source_field='complaint_id', db_constraint=True, to_field='id', related_name='access', on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'complaint_access', 'app': 'models', 'pk_attr': 'id', 'table_description': "The receipt's access code of one complaint, as an argon2 hash."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LookupAttempt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('address', fields.CharField(db_index=True, max_length=128)),
                ('number', fields.CharField(db_index=True, max_length=32)),
                ('ok', fields.BooleanField()),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'lookup_attempt', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One check of a number and a proof, for the rate limits (old rows are pruned as we go).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FollowedComplaint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharEnumField(description='WEB: web\nTELEGRAM: telegram\nWECHAT: wechat', enum_type=Channel, max_length=16)),
                ('external_id', fields.CharField(max_length=128)),
                ('complaint', fields.ForeignKeyField('models.Complaint', source_field='complaint_id', db_constraint=True, to_field='id', related_name='followers', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'followed_complaint', 'app': 'models', 'unique_together': (('channel', 'external_id', 'complaint'),), 'pk_attr': 'id', 'table_description': 'A chat or web-chat session that proved a complaint theirs: its "my complaints" list.'},
            bases=['Model'],
        ),
    ]
