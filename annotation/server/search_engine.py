"""``vecs-sql``: an argilla-server 2.8 search engine that answers from the server's own SQL database.

Argilla normally mirrors every record into Elasticsearch/OpenSearch and searches there. Everything a
search needs is already in its SQL tables (``records.fields`` / ``records.metadata`` JSON, ``responses``,
``suggestions``), so this engine translates the search API (text query, metadata / response / suggestion /
record filters, sorts, paging) into one SQL statement per call, run on SQLite or PostgreSQL, with the
filtering, sorting, counting and paging done by the database. No Elasticsearch, no index to keep in sync:
the index-maintenance hooks are no-ops because the rows they would mirror are already committed (argilla
calls them after its SQL commit).

Selected with ``ARGILLA_SEARCH_ENGINE=vecs-sql``; this module must be imported before the server (and the rq
worker) look the engine up — ``python -m annotation.server start|worker|…`` does that. It imports nothing
but the standard library, argilla_server and its SQLAlchemy.

Semantics follow argilla's Elasticsearch engine (``argilla_server/search_engine/commons.py``):

* text query: every term must occur (simple-query-string style ``AND``); ``"quoted phrases"``, ``-negated``
  terms and ``|`` alternatives are understood; matching is a case-insensitive substring match on the text
  of the record's fields. Case folding covers ASCII letters only: ``MEETING`` and ``Mình`` find
  ``meeting`` and ``mình``, ``MÌNH`` does not. A cheap ``LIKE`` on the raw JSON column answers alone when
  the term cannot match field names or JSON syntax (then a term may also match just after a JSON escape
  such as ``\n`` — a rare extra hit); otherwise it pre-filters the rows whose fields are then parsed.
* ``pending`` response status = no response by the user (UI route) or no response at all (owner route).
* with ``user_id`` (the UI's ``/me/…/records/search`` route) records come in a stable order shuffled per
  user — a hash of record and user — so two annotators do not start on the same record; explicit sorts
  go first and the per-user order breaks their ties. Without ``user_id`` the order is insertion order.
* missing values sort last in both directions.
* vector similarity search is not supported (HTTP 422 with a clear message).
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Union
from uuid import UUID

from sqlalchemy import (
    case,
    func,
    literal,
    select,
    true,
)

from argilla_server.enums import (
    MetadataPropertyType,
    RecordStatus,
    ResponseStatus,
    SimilarityOrder,
)
from argilla_server.errors.future import UnprocessableEntityError
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Record,
    Response,
    Suggestion,
    User,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataMetrics,
    Order,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    TermsMetrics,
    TextQuery,
)

from .query import Dialect, QueryCompiler, as_uuid

ENGINE_NAME = "vecs-sql"
__version__ = "1.0"

#: Elasticsearch caps terms aggregations at this many buckets; so do we.
MAX_TERMS_BUCKETS = 2**14


@SearchEngine.register(ENGINE_NAME)
class SQLSearchEngine(SearchEngine):
    """Stateless: argilla makes one per request (``new_instance``) and closes it afterwards."""

    def __init__(self) -> None:
        self._db = None

    # -- life cycle ----------------------------------------------------------------------------------
    @classmethod
    async def new_instance(cls) -> "SQLSearchEngine":
        return cls()

    async def _session(self):
        if self._db is None:
            from argilla_server.database import AsyncSessionLocal

            self._db = AsyncSessionLocal()
        return self._db

    async def _dialect(self) -> Dialect:
        db = await self._session()
        return Dialect(db.bind.dialect.name)

    async def close(self):
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> bool:
        db = await self._session()
        return (await db.execute(select(literal(1)))).scalar() == 1

    async def info(self) -> dict:
        db = await self._session()
        return {"name": ENGINE_NAME, "version": __version__, "database": db.bind.dialect.name}

    # -- index maintenance: the data is already in SQL ------------------------------------------------
    async def create_index(self, dataset: Dataset):
        pass

    async def delete_index(self, dataset: Dataset):
        pass

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty):
        pass

    async def configure_index_vectors(self, vector_settings: VectorSettings):
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def partial_record_update(self, record: Record, **update):
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def update_record_response(self, response: Response):
        pass

    async def delete_record_response(self, response: Response):
        pass

    async def update_record_suggestion(self, suggestion: Suggestion):
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion):
        pass

    # -- progress and metrics --------------------------------------------------------------------------
    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        db = await self._session()
        rows = (
            await db.execute(
                select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
            )
        ).all()
        counts = {RecordStatus(status).value: n for status, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        db = await self._session()
        rows = (
            await db.execute(
                select(Response.status, func.count())
                .join(Record, Record.id == Response.record_id)
                .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                .group_by(Response.status)
            )
        ).all()
        counts = {ResponseStatus(status).value: n for status, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        db = await self._session()
        d = await self._dialect()
        keys = [metadata_property.name]
        in_dataset = Record.dataset_id == metadata_property.dataset_id

        if metadata_property.type == MetadataPropertyType.terms:
            if d.pg:
                node = d.node(Record.metadata_, keys)
                as_array = case((d.is_array(Record.metadata_, keys), node), else_=func.json_build_array(node))
                tv = func.json_array_elements_text(as_array).table_valued("value")
                value = tv.c.value
                stmt = (
                    select(value, func.count())
                    .select_from(Record)
                    .join(tv, true())
                    .where(in_dataset, d.jtype(Record.metadata_, keys).notin_(["null"]))
                )
            else:
                tv = d.elements(Record.metadata_, keys)
                value = tv.c.value
                stmt = select(value, func.count()).select_from(Record).join(tv, true()).where(in_dataset)
            stmt = stmt.where(value.isnot(None)).group_by(value).order_by(func.count().desc(), value)
            rows = (await db.execute(stmt)).all()
            total = sum(n for _, n in rows)
            return TermsMetrics(
                total=total,
                values=[TermsMetrics.TermCount(term=str(v), count=n) for v, n in rows[:MAX_TERMS_BUCKETS]],
            )

        number = d.number(Record.metadata_, keys)
        lo, hi = (
            await db.execute(select(func.min(number), func.max(number)).where(in_dataset, number.isnot(None)))
        ).one()
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(
                min=None if lo is None else int(lo), max=None if hi is None else int(hi)
            )
        return FloatMetadataMetrics(min=None if lo is None else float(lo), max=None if hi is None else float(hi))

    # -- search ------------------------------------------------------------------------------------------
    async def search(
        self,
        dataset: Dataset,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        sort: Optional[List[Order]] = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Optional[Union[UUID, str]] = None,
        **_: Any,
    ) -> SearchResponses:
        db = await self._session()
        ctx = QueryCompiler(self, dataset, await self._dialect())

        where = [Record.dataset_id == dataset.id]
        if filter is not None:
            where.append(await ctx.filter_condition(filter))
        if query is not None:  # last: both databases keep this order for similar-cost conditions
            where.append(await ctx.text_condition(query))

        order_by = []
        for order in sort or []:
            order_by.extend(await ctx.order_expressions(order))
        if user_id is not None:
            order_by.append(ctx.d.user_order(user_id))
        else:
            order_by.extend([Record.inserted_at.asc(), Record.id.asc()])

        # One pass: the window count is computed over every matching row before LIMIT applies.
        stmt = (
            select(Record.id, func.count().over().label("total"))
            .where(*where)
            .order_by(*order_by)
            .offset(offset)
            .limit(limit)
        )
        rows = (await db.execute(stmt)).all()
        if rows:
            total = rows[0].total
        elif offset > 0:
            total = (await db.execute(select(func.count()).select_from(Record).where(*where))).scalar_one()
        else:
            total = 0
        score = 1.0 if query is not None else None
        return SearchResponses(
            items=[SearchResponseItem(record_id=as_uuid(r.id), score=score) for r in rows], total=total
        )

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: Optional[List[float]] = None,
        record: Optional[Record] = None,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: Optional[float] = None,
    ) -> SearchResponses:
        raise UnprocessableEntityError(
            f"Vector similarity search is not supported by the '{ENGINE_NAME}' search engine "
            "(VECS runs Argilla without Elasticsearch); search by text, metadata, responses or suggestions instead."
        )
