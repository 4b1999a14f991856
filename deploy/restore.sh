#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh into a fresh, empty PostgreSQL database, bring its
# schema up to this version (`complaintdesk migrate`) and check what came back.
#
#   deploy/restore.sh DUMP_FILE DATABASE_URL [DATA_DIR]
#
# DATABASE_URL must name an existing, empty database (createdb it first); the script refuses a
# database that already has tables, so it never mixes two installations. With DATA_DIR and an
# attachments archive next to the dump (file storage), the files are unpacked there.
# Needs pg_restore and psql on PATH and `complaintdesk` (the installed package).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 DUMP_FILE DATABASE_URL [DATA_DIR]" >&2
  exit 2
fi
dump=$1
url=$2
data_dir=${3:-}
complaintdesk=${COMPLAINTDESK_BIN:-complaintdesk}

if [ ! -f "$dump" ]; then
  echo "restore: no such backup file: $dump" >&2
  exit 2
fi
tables=$(psql --no-psqlrc --tuples-only --no-align --dbname="$url" \
  --command="SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
if [ "$tables" != "0" ]; then
  echo "restore: the target database already has $tables tables; restore into an empty one" >&2
  exit 1
fi

pg_restore --no-owner --no-privileges --exit-on-error --dbname="$url" "$dump"

archive="${dump%.dump}.attachments.tar.gz"
if [ -n "$data_dir" ] && [ -f "$archive" ]; then
  mkdir -p "$data_dir"
  tar -C "$data_dir" -xzf "$archive"
  echo "attachments unpacked into $data_dir/attachments"
fi

# A backup from an older version gets the migrations it lacks.
"$complaintdesk" migrate --db "$url"

counts=$(psql --no-psqlrc --tuples-only --no-align --field-separator=' ' --dbname="$url" \
  --command="SELECT (SELECT count(*) FROM complaint), (SELECT count(*) FROM attachment),
                    (SELECT count(*) FROM staff), (SELECT count(*) FROM event)")
read -r complaints attachments staff events <<<"$counts"
echo "restored: $complaints complaints, $attachments attachments, $staff staff, $events events"
