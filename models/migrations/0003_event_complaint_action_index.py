from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_scheduler_alarms')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Event',
            index=Index(fields=['complaint_id', 'action']),
        ),
    ]
