#!/usr/bin/env bash
# Back up complaintdesk: the PostgreSQL database (pg_dump, custom format) and, when attachments
# are kept as files (COMPLAINTDESK_ATTACHMENT_STORAGE=file), the attachments folder.
#
#   deploy/backup.sh DATABASE_URL OUT_DIR [DATA_DIR]
#
# With the default storage (database) the dump holds the attachments too. With s3:// storage,
# back the bucket up on its own (versioning, or `mc mirror`/`aws s3 sync`), at the same time.
# Writes OUT_DIR/complaintdesk-YYYYmmddTHHMMSSZ.dump (+ .attachments.tar.gz) and prints the
# paths. Safe while workers run: pg_dump reads one consistent snapshot.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 DATABASE_URL OUT_DIR [DATA_DIR]" >&2
  exit 2
fi
url=$1
out=$2
data_dir=${3:-}
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
dump="$out/complaintdesk-$stamp.dump"

pg_dump --format=custom --no-owner --no-privileges --file="$dump" --dbname="$url"
echo "$dump"
if [ -n "$data_dir" ] && [ -d "$data_dir/attachments" ]; then
  tar -C "$data_dir" -czf "$out/complaintdesk-$stamp.attachments.tar.gz" attachments
  echo "$out/complaintdesk-$stamp.attachments.tar.gz"
fi
