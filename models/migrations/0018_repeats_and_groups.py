from tortoise import migrations
from tortoise.migrations import operations as ops
from models.matters import GroupStatus, LinkSource
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0017_callback_assignee')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MatterGroup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('profile', fields.CharField(max_length=64)),
                ('status', fields.CharEnumField(default=GroupStatus.PROPOSED, description='PROPOSED: proposed\nCONFIRMED: confirmed\nDISMISSED: dismissed', enum_type=GroupStatus, max_length=16)),
                ('proposed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reviewed_by', fields.ForeignKeyField('models.Staff', source_field='reviewed_by_id', null=True, db_constraint=True, to_field='id', related_name='reviewed_groups', on_delete=OnDelete.SET_NULL)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decision_text', fields.TextField(null=True, unique=False)),
                ('decided_by', fields.ForeignKeyField('models.Staff', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name='decided_groups', on_delete=OnDelete.SET_NULL)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'matter_group', 'app': 'models', 'indexes': [Index(fields=['status', 'profile'])], 'pk_attr': 'id', 'table_description': 'Complaints of many complainants about one matter, settled by one decision.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MatterGroupMember',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('group', fields.ForeignKeyField('models.MatterGroup', source_field='group_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('complaint', fields.ForeignKeyField('models.Complaint', source_field='complaint_id', db_constraint=True, to_field='id', related_name='group_memberships', on_delete=OnDelete.CASCADE)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('removed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('removed_by', fields.ForeignKeyField('models.Staff', source_field='removed_by_id', null=True, db_constraint=True, to_field='id', related_name='removed_members', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'matter_group_member', 'app': 'models', 'unique_together': (('group', 'complaint'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RepeatLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('complaint', fields.OneToOneField('models.Complaint', source_field='complaint_id', db_constraint=True, to_field='id', related_name='repeat_link', on_delete=OnDelete.CASCADE)),
                ('repeat_of', fields.ForeignKeyField('models.Complaint', source_field='repeat_of_id', db_constraint=True, to_field='id', related_name='repeated_by', on_delete=OnDelete.CASCADE)),
                ('score', fields.FloatField(null=True)),
                ('source', fields.CharEnumField(description='DETECTED: detected\nSTAFF: staff', enum_type=LinkSource, max_length=16)),
                ('linked_by', fields.ForeignKeyField('models.Staff', source_field='linked_by_id', null=True, db_constraint=True, to_field='id', related_name='repeat_links', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'repeat_link', 'app': 'models', 'pk_attr': 'id', 'table_description': '`complaint` repeats `repeat_of` (one link per complaint: the earlier it repeats).'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['complainant_id', 'submitted_at']),
        ),
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['contact_phone', 'submitted_at']),
        ),
    ]
