from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0011_webchat_lookup")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Attachment",
            name="uploader",
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name="Attachment",
            name="client_address",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddIndex(
            model_name="Attachment",
            index=Index(fields=["uploader", "created_at"]),
        ),
        ops.AddIndex(
            model_name="Attachment",
            index=Index(fields=["client_address", "created_at"]),
        ),
    ]
