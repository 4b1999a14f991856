from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_desk_case_search')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['submitted_at']),
        ),
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['category']),
        ),
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['lead_department_id']),
        ),
        ops.AddIndex(
            model_name='Complaint',
            index=Index(fields=['handler_id']),
        ),
    ]
