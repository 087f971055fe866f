"""Entry point run by the *server* venv: ``python -m annotation.server serve|worker|<argilla_server CLI …>``.

It registers the ``vecs-sql`` search engine (``annotation.server.search_engine``) before argilla_server
looks it up, then:

* ``serve --host H --port P --credentials FILE``: migrates the database, makes sure the owner from FILE
  exists with that password and API key, and runs the server (uvicorn) — all in one process, so the
  ~3 s ``import argilla_server`` (which copies the 14 MB UI into ``$TMPDIR``) is paid once;
* ``worker [--num-workers N]`` and anything else: argilla_server's own CLI (``python -m argilla_server``).

Three speed-ups of argilla_server 2.8, same behaviour (see each function): one pydantic adapter per
settings type instead of one per call, webhook events built only when a webhook is enabled, and workspace
membership looked up once per request. Logging records goes from ~9 ms to ~1 ms a record on 2 cores, and
the UI's search route loses ~40 ms a page.

Only the standard library and the server venv's packages are imported here.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path


def _enable_sqlite_wal() -> None:
    """WAL lets the server, the worker and our searches read while another connection writes."""
    from sqlalchemy.engine import make_url

    from argilla_server.settings import settings

    if not settings.database_is_sqlite:
        return
    import sqlite3

    path = make_url(settings.database_url).database
    if not path or path == ":memory:":
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def migrate() -> None:
    """``argilla_server database migrate`` without alembic.ini: its logging fileConfig would silence the
    server's loggers when run in-process."""
    from alembic import command
    from alembic.config import Config

    import argilla_server

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(argilla_server.__file__).parent / "alembic"))
    cfg.set_main_option("version_path_separator", "os")
    command.upgrade(cfg, "head")


async def ensure_owner(credentials: Path) -> str:
    """Create the owner once; if it exists, make its password and API key match the credentials file."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.enums import UserRole
    from argilla_server.models import User

    creds = json.loads(credentials.read_text())
    try:
        return await _ensure_owner(creds, accounts, AsyncSessionLocal, UserRole, User)
    finally:
        from argilla_server.database import async_engine

        await async_engine.dispose()  # its connections belong to this event loop, not uvicorn's


async def _ensure_owner(creds, accounts, AsyncSessionLocal, UserRole, User) -> str:
    async with AsyncSessionLocal() as db:
        user = await accounts.get_user_by_username(db, creds["username"])
        if user is None:
            await User.create(
                db,
                first_name="VECS",
                last_name="owner",
                username=creds["username"],
                role=UserRole.owner,
                password_hash=accounts.hash_password(creds["password"]),
                api_key=creds["api_key"],
            )
            return "created"
        changed = False
        if user.api_key != creds["api_key"]:
            user.api_key = creds["api_key"]
            changed = True
        if not accounts.verify_password(creds["password"], user.password_hash):
            user.password_hash = accounts.hash_password(creds["password"])
            changed = True
        if user.role != UserRole.owner:
            user.role = UserRole.owner
            changed = True
        if changed:
            await db.commit()
            return "updated"
        return "exists"


def cache_settings_adapters() -> None:
    """``Question.parsed_settings`` / ``MetadataProperty.parsed_settings`` build a new pydantic
    ``TypeAdapter`` (a full schema generation, ~1.4 ms) on every call, and validating a record calls them
    once per suggestion and metadata value: most of the time a bulk upsert takes. Same validation, one
    adapter each."""
    from pydantic import TypeAdapter

    from argilla_server.models import database

    questions = TypeAdapter(database.QuestionSettings)
    metadata = TypeAdapter(database.MetadataPropertySettings)
    database.Question.parsed_settings = property(lambda self: questions.validate_python(self.settings))
    database.MetadataProperty.parsed_settings = property(lambda self: metadata.validate_python(self.settings))


def remember_membership() -> None:
    """The UI's search route checks, for every record it returns and every metadata key on it, whether the
    annotator may see that key — one workspace-membership query each (60 for a page of 10 records with 6
    keys). The answer cannot change within a request, so it is kept on the request's user object."""
    import weakref

    from argilla_server.models import User

    is_member = User.is_member
    memo: "weakref.WeakKeyDictionary[User, dict]" = weakref.WeakKeyDictionary()

    async def is_member_once(self, workspace_id) -> bool:
        known = memo.setdefault(self, {})
        if workspace_id not in known:
            known[workspace_id] = await is_member(self, workspace_id)
        return known[workspace_id]

    is_member_once.__wrapped__ = is_member
    User.is_member = is_member_once


def skip_unheard_events() -> None:
    """Build webhook events only when some webhook is enabled.

    argilla_server builds every record event (a dataset load with five relationships, a pydantic dump)
    before it looks for webhooks, for each record of a bulk upsert — most of the ~9 ms a record costs to
    log. With no enabled webhook the event is dropped anyway (``enqueue_notify_events`` returns ``[]``), so
    the check comes first here, once per database session (one request).
    """
    import argilla_server.bulk.records_bulk as records_bulk
    import argilla_server.contexts.datasets as datasets_ctx
    import argilla_server.contexts.distribution as distribution_ctx
    import argilla_server.contexts.records as records_ctx
    import argilla_server.webhooks.v1.datasets as dataset_events
    import argilla_server.webhooks.v1.records as record_events
    import argilla_server.webhooks.v1.responses as response_events
    from argilla_server.contexts import webhooks

    async def anyone_listening(db) -> bool:
        key = "vecs_enabled_webhooks"
        if key not in db.info:
            db.info[key] = bool(await webhooks.list_enabled_webhooks(db))
        return db.info[key]

    def guarded(notify):
        async def notify_if_heard(db, event, obj):
            if not await anyone_listening(db):
                return []
            return await notify(db, event, obj)

        notify_if_heard.__wrapped__ = notify
        return notify_if_heard

    targets = {
        "notify_record_event_v1": guarded(record_events.notify_record_event),
        "notify_response_event_v1": guarded(response_events.notify_response_event),
        "notify_dataset_event_v1": guarded(dataset_events.notify_dataset_event),
    }
    for module in (records_bulk, datasets_ctx, distribution_ctx, records_ctx):
        for name, fn in targets.items():
            if hasattr(module, name):
                setattr(module, name, fn)


def _opt(args: list[str], name: str, default: str | None = None) -> str | None:
    if name in args:
        i = args.index(name)
        return args[i + 1]
    for a in args:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def serve(args: list[str]) -> None:
    host = _opt(args, "--host", "127.0.0.1")
    port = int(_opt(args, "--port", "6900"))
    credentials = _opt(args, "--credentials")
    log = logging.getLogger("vecs.argilla")
    _enable_sqlite_wal()
    migrate()
    if credentials:
        outcome = asyncio.run(ensure_owner(Path(credentials)))
        print(f"vecs: owner account {outcome}", flush=True)
    import uvicorn
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from argilla_server import app  # already imported by the search engine module

    hosts = [h for h in os.environ.get("VECS_ALLOWED_HOSTS", "").split(",") if h]
    if hosts:  # requests naming another host (DNS rebinding) get 400 before any route sees them
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    log.info("starting on %s:%s", host, port)
    uvicorn.run("argilla_server:app", host=host, port=port, access_log=True, log_level="info")


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from . import search_engine  # noqa: F401 - registers "vecs-sql"

    cache_settings_adapters()
    skip_unheard_events()
    remember_membership()

    if args and args[0] == "serve":
        serve(args[1:])
        return
    from argilla_server.cli import app

    app(args=args, prog_name="python -m annotation.server")


if __name__ == "__main__":
    main()
