from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
import functools
from json import dumps, loads
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0012_robust_upload_origin')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DeskExport',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='exports', on_delete=OnDelete.SET_NULL)),
                ('kind', fields.CharField(max_length=16)),
                ('filters', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('rows', fields.IntField(default=0)),
                ('identity_rows', fields.IntField(default=0)),
                ('finished', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False, db_index=True)),
            ],
            options={'table': 'desk_export', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Audit: a staff member downloaded a list of cases (CSV / XLSX) or a report workbook'},
            bases=['Model'],
        ),
    ]
