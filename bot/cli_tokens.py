"""CLI commands `tokens create|list|revoke`: API tokens for the REST API and Open311.

The CLI is the operator's hand: it creates and revokes tokens for any staff member (the desk's
/desk/tokens page lets each staff member manage their own, and admins everyone's). A new token
is printed once; the database keeps only its SHA-256 (models.api_tokens).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from bot.cli_staff import _with_db  # one way to open and close the database for a command
from models.api_tokens import ALL_SCOPES, ApiToken, create_token
from models.entities import Staff


def _create(args: argparse.Namespace) -> int:
    async def work() -> int:
        staff = await Staff.filter(id=args.staff).first()
        if staff is None:
            print(f"error: no staff member {args.staff}", file=sys.stderr)
            return 1
        scopes = [s for part in args.scope for s in part.split(",") if s]
        try:
            made = await create_token(staff, args.name, scopes, now=datetime.now(UTC))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"token {made.token.id} for {staff.name} ({', '.join(made.token.scopes)}):")
        print(made.secret)
        print("Shown once: store it now. Revoke with `complaintdesk tokens revoke "
              f"{made.token.id}`.", file=sys.stderr)  # fmt: skip
        return 0

    return _with_db(args, work)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def _list(args: argparse.Namespace) -> int:
    async def work() -> int:
        query = ApiToken.all()
        if args.staff is not None:
            query = query.filter(staff_id=args.staff)
        rows = await query.order_by("id").prefetch_related("staff")
        print("id\tstaff\tname\tprefix\tscopes\tcreated\tlast used\trevoked")
        for t in rows:
            print(
                f"{t.id}\t{t.staff.id} {t.staff.name}\t{t.name}\t{t.prefix}…\t"
                f"{','.join(t.scopes)}\t{_when(t.created_at)}\t{_when(t.last_used_at)}\t"
                f"{_when(t.revoked_at)}"
            )
        return 0

    return _with_db(args, work)


def _revoke(args: argparse.Namespace) -> int:
    async def work() -> int:
        token = await ApiToken.filter(id=args.id).first()
        if token is None:
            print(f"error: no token {args.id}", file=sys.stderr)
            return 1
        if token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)
            await token.save(update_fields=["revoked_at"])
        print(f"token {token.id} revoked at {_when(token.revoked_at)}")
        return 0

    return _with_db(args, work)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tokens = subparsers.add_parser("tokens", help="create, list and revoke API tokens")
    sub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a token for a staff member (printed once)")
    create.add_argument("--staff", type=int, required=True, help="staff id (see `staff list`)")
    create.add_argument("--name", required=True, help="what the token is for")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help=f"repeat or comma-separate: {', '.join(ALL_SCOPES)}",
    )
    create.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    create.set_defaults(func=_create)
    listing = sub.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--staff", type=int, help="only this staff member's")
    listing.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    listing.set_defaults(func=_list)
    revoke = sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id", type=int, help="token id (see `tokens list`)")
    revoke.add_argument("--db", help="database URL (default: COMPLAINTDESK_DATABASE_URL)")
    revoke.set_defaults(func=_revoke)
