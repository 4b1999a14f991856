"""Full-text search for the desk's case list over number, facts, target and place.

SQLite: an FTS5 table with the trigram tokenizer, kept by triggers. Chinese is written without
spaces, so a word tokenizer (unicode61) would index a whole sentence as one token; trigrams
match any substring of three or more characters in any script ("3栋2单元", "漏水严重").
PostgreSQL: a pg_trgm GIN index on the same four columns, for ILIKE '%…%'. Stock PostgreSQL
has no Chinese word segmenter (zhparser / pg_jieba are extra builds), and to_tsvector('simple')
would again treat an unspaced sentence as one word; trigrams need only the contrib extension.
Shorter terms (one or two characters) are matched with LIKE on both (models/caselist.py).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

SEARCH_EXPRESSION = (
    "(number || ' ' || facts || ' ' || coalesce(target_text, '') || ' ' || "
    "coalesce(place_text, ''))"
)

SQLITE_FORWARD = """
CREATE VIRTUAL TABLE complaint_fts USING fts5(
    number, facts, target_text, place_text,
    content='complaint', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER complaint_fts_insert AFTER INSERT ON complaint BEGIN
    INSERT INTO complaint_fts(rowid, number, facts, target_text, place_text)
    VALUES (new.id, new.number, new.facts, new.target_text, new.place_text);
END;
CREATE TRIGGER complaint_fts_delete AFTER DELETE ON complaint BEGIN
    INSERT INTO complaint_fts(complaint_fts, rowid, number, facts, target_text, place_text)
    VALUES ('delete', old.id, old.number, old.facts, old.target_text, old.place_text);
END;
CREATE TRIGGER complaint_fts_update AFTER UPDATE OF number, facts, target_text, place_text
ON complaint BEGIN
    INSERT INTO complaint_fts(complaint_fts, rowid, number, facts, target_text, place_text)
    VALUES ('delete', old.id, old.number, old.facts, old.target_text, old.place_text);
    INSERT INTO complaint_fts(rowid, number, facts, target_text, place_text)
    VALUES (new.id, new.number, new.facts, new.target_text, new.place_text);
END;
INSERT INTO complaint_fts(complaint_fts) VALUES ('rebuild');
"""

SQLITE_BACKWARD = """
DROP TRIGGER IF EXISTS complaint_fts_update;
DROP TRIGGER IF EXISTS complaint_fts_delete;
DROP TRIGGER IF EXISTS complaint_fts_insert;
DROP TABLE IF EXISTS complaint_fts;
"""

POSTGRES_FORWARD = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS complaint_search_trgm ON complaint
USING gin ({SEARCH_EXPRESSION} gin_trgm_ops);
"""

POSTGRES_BACKWARD = "DROP INDEX IF EXISTS complaint_search_trgm;"


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script(SQLITE_FORWARD)
    elif client.capabilities.dialect == "postgres":
        await client.execute_script(POSTGRES_FORWARD)


async def backward(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script(SQLITE_BACKWARD)
    elif client.capabilities.dialect == "postgres":
        await client.execute_script(POSTGRES_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_desk_auth')]

    initial = False

    operations = [
        ops.RunPython(forward, backward),
    ]
