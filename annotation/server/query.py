"""The query compiler of the ``vecs-sql`` search engine: Argilla's search API (text query, filters, sorts) as
SQLAlchemy expressions over the server's own tables, for SQLite and PostgreSQL (``search_engine.py`` runs them).

Like the engine, it imports nothing but the standard library, argilla_server and its SQLAlchemy: the server
venv loads it.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any, Iterable, List, Optional, Sequence, Union
from uuid import UUID

from sqlalchemy import (
    Float,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    type_coerce,
)

from argilla_server.enums import (
    MetadataPropertyType,
    RecordSortField,
    RecordStatus,
    ResponseStatus,
    ResponseStatusFilter,
    SortOrder,
    SuggestionType,
)
from argilla_server.errors.future import UnprocessableEntityError
from argilla_server.models import (
    Dataset,
    Field,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
)
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    MetadataFilterScope,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SuggestionFilterScope,
    TermsFilter,
    TextQuery,
)

#: A prime above any rowid we expect: the per-user order on SQLite is ``(rowid * a + b) mod P``.
_P = 2_147_483_647
_LIKE_ESCAPE = "\\"


def _escape_like(s: str) -> str:
    return s.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")


def _user_seed(user_id: Any) -> tuple[int, int, str]:
    digest = hashlib.sha256(f"vecs-sql:{user_id}".encode()).digest()
    a = int.from_bytes(digest[:8], "big") % (_P - 1) + 1
    b = int.from_bytes(digest[8:16], "big") % _P
    return a, b, digest[16:24].hex()


def parse_text_query(q: str) -> list[list[tuple[str, bool]]]:
    """``a "b c" -d | e`` → ``[[("a", False), ("b c", False), ("d", True)], [("e", False)]]``.

    A list of alternatives (``|``), each a conjunction of (term, negated) pairs.
    """
    alternatives: list[list[tuple[str, bool]]] = [[]]
    for m in re.finditer(r'(-|\+)?"([^"]*)"?|(\|)|(\S+)', q):
        sign, phrase, bar, word = m.groups()
        if bar:
            alternatives.append([])
            continue
        if phrase is not None:
            term, neg = phrase.strip(), sign == "-"
        else:
            neg = word.startswith("-") and len(word) > 1
            term = word.lstrip("+-").rstrip("*")
            if term.upper() in ("AND", "OR") and not neg:
                if term.upper() == "OR":
                    alternatives.append([])
                continue
        if term:
            alternatives[-1].append((term, neg))
    return [alt for alt in alternatives if alt]


class Dialect:
    """The few JSON / hashing expressions that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str):
        self.pg = name == "postgresql"

    @staticmethod
    def _sqlite_path(keys: Sequence[str]) -> str:
        return "$" + "".join(f'."{k}"' for k in keys)

    def node(self, col, keys: Sequence[str]):
        """The JSON value at ``keys`` (PostgreSQL: json; SQLite: the SQL value or JSON text)."""
        if self.pg:
            return func.json_extract_path(col, *keys) if keys else col
        return func.json_extract(col, self._sqlite_path(keys))

    def jtype(self, col, keys: Sequence[str]):
        if self.pg:
            return func.json_typeof(self.node(col, keys))
        return func.json_type(col, self._sqlite_path(keys))

    def is_array(self, col, keys: Sequence[str]):
        return self.jtype(col, keys) == "array"

    def text(self, col, keys: Sequence[str]):
        """A scalar as text (PostgreSQL) or as its SQL value (SQLite, where numbers stay numbers)."""
        if self.pg:
            if keys:
                return func.json_extract_path_text(col, *keys)
            return func.json_extract_path_text(func.json_build_array(col), "0")
        return self.node(col, keys)

    def number(self, col, keys: Sequence[str]):
        if self.pg:
            return case(
                (self.jtype(col, keys) == "number", cast(self.text(col, keys), Float)),
                else_=None,
            )
        return self.node(col, keys)

    def elements(self, col, keys: Sequence[str]):
        """Table-valued: the elements of the array at ``keys`` (column ``value``)."""
        if self.pg:
            return func.json_array_elements_text(self.node(col, keys)).table_valued("value")
        return func.json_each(col, self._sqlite_path(keys)).table_valued("value")

    def element_number(self, tv):
        return cast(tv.c.value, Float) if self.pg else tv.c.value

    def raw_text(self, col):
        return cast(col, Text) if self.pg else type_coerce(col, Text)

    def like_raw(self, expr, pattern: str):
        """Case-insensitive for ASCII, on JSON text: PostgreSQL's ILIKE is twice as fast under "C"."""
        if self.pg:
            return expr.collate("C").ilike(pattern, escape=_LIKE_ESCAPE)
        return expr.like(pattern, escape=_LIKE_ESCAPE)

    def like(self, expr, pattern: str):
        # SQLite's LIKE is already case-insensitive (ASCII); lower() would only cost time.
        if self.pg:
            return expr.ilike(pattern, escape=_LIKE_ESCAPE)
        return expr.like(pattern, escape=_LIKE_ESCAPE)

    def user_order(self, user_id: Any):
        a, b, salt = _user_seed(user_id)
        if self.pg:
            return func.md5(func.concat(cast(Record.id, Text), literal(salt)))
        rowid = literal_column(f"{Record.__tablename__}.rowid")
        return (rowid * a + b) % _P

    # -- value predicates on JSON that may hold a scalar or an array of scalars ------------------------
    def any_in(self, col, keys: Sequence[str], values: List[str]):
        if not self.pg:
            values = _sqlite_values(values)
        tv = self.elements(col, keys)
        in_array = exists(select(literal(1)).select_from(tv).where(tv.c.value.in_(values)))
        if self.pg:
            return case((self.is_array(col, keys), in_array), else_=self.text(col, keys).in_(values))
        return or_(self.node(col, keys).in_(values), and_(self.is_array(col, keys), in_array))

    def any_in_range(self, col, keys: Sequence[str], ge, le):
        tv = self.elements(col, keys)
        in_array = exists(select(literal(1)).select_from(tv).where(_range(self.element_number(tv), ge, le)))
        scalar = _range(self.number(col, keys), ge, le)
        if self.pg:
            return case((self.is_array(col, keys), in_array), else_=scalar)
        return or_(scalar, and_(self.is_array(col, keys), in_array))


def _sqlite_values(values: Iterable[str]) -> list:
    """Terms arrive as strings; SQLite's json_extract keeps numbers numeric, so match both forms."""
    out: list = []
    for v in values:
        out.append(v)
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        out.append(int(f) if f.is_integer() else f)
    return out


def _range(expr, ge, le):
    conds = []
    if ge is not None:
        conds.append(expr >= ge)
    if le is not None:
        conds.append(expr <= le)
    return and_(*conds) if conds else true()


def _as_datetime(v: Union[float, str, None]) -> Optional[datetime]:
    if v is None:
        return None
    if isinstance(v, (int, float)):  # Elasticsearch reads numbers as epoch milliseconds
        return datetime.fromtimestamp(v / 1000, tz=timezone.utc).replace(tzinfo=None)
    try:
        return datetime.fromtimestamp(float(v) / 1000, tz=timezone.utc).replace(tzinfo=None)
    except ValueError:
        dt = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def as_uuid(v) -> UUID:
    return v if isinstance(v, UUID) else UUID(str(v))


class QueryCompiler:
    """Compiles one search into SQL expressions; its look-ups (dataset fields, metadata properties, question ids)
    are fetched at most once."""

    def __init__(self, engine, dataset: Dataset, dialect: Dialect):
        self.engine = engine  # its _session() opens the request's database session
        self.dataset = dataset
        self.d = dialect
        self._fields: Optional[list[tuple[str, str]]] = None
        self._metadata: Optional[dict[str, MetadataPropertyType]] = None
        self._questions: Optional[dict[str, tuple[UUID, str]]] = None

    async def fields(self) -> list[tuple[str, str]]:
        if self._fields is None:
            db = await self.engine._session()
            rows = (
                await db.execute(
                    select(Field.name, Field.settings).where(Field.dataset_id == self.dataset.id).order_by(Field.inserted_at)
                )
            ).all()
            self._fields = [(name, (settings or {}).get("type", "text")) for name, settings in rows]
        return self._fields

    async def metadata_type(self, name: str) -> MetadataPropertyType:
        if self._metadata is None:
            db = await self.engine._session()
            rows = (
                await db.execute(
                    select(MetadataProperty.name, MetadataProperty.settings).where(
                        MetadataProperty.dataset_id == self.dataset.id
                    )
                )
            ).all()
            self._metadata = {n: MetadataPropertyType((s or {}).get("type", "terms")) for n, s in rows}
        if name not in self._metadata:
            raise UnprocessableEntityError(f"Metadata property `{name}` not found in dataset `{self.dataset.id}`.")
        return self._metadata[name]

    async def question(self, name: str) -> tuple[UUID, str]:
        if self._questions is None:
            db = await self.engine._session()
            rows = (
                await db.execute(
                    select(Question.name, Question.id, Question.settings).where(Question.dataset_id == self.dataset.id)
                )
            ).all()
            self._questions = {n: (qid, (s or {}).get("type", "text")) for n, qid, s in rows}
        if name not in self._questions:
            raise UnprocessableEntityError(f"Question `{name}` not found in dataset `{self.dataset.id}`.")
        return self._questions[name]

    # -- text ------------------------------------------------------------------------------------------
    async def text_condition(self, query: Union[TextQuery, str]):
        text = TextQuery(q=query) if isinstance(query, str) else query
        fields = await self.fields()
        if text.field:
            fields = [f for f in fields if f[0] == text.field]
            if not fields:
                raise UnprocessableEntityError(f"Field `{text.field}` not found in dataset `{self.dataset.id}`.")
        # Searching every field of a dataset without image fields, the raw JSON is the fields' text plus
        # the field names, JSON punctuation and null/true/false (custom fields count whole, keys included,
        # as Elasticsearch indexes them). A term that cannot be part of those needs no per-field check.
        structure = None
        if not text.field and all(f[1] != "image" for f in fields):
            structure = [name.lower() for name, _ in fields] + ["null", "true", "false", "role", "content"]
        fields = [f for f in fields if f[1] != "image"]
        alternatives = parse_text_query(text.q)
        if not alternatives:
            return true()
        if not fields:
            return false()
        return or_(*[and_(*[self._term(term, neg, fields, structure) for term, neg in alt]) for alt in alternatives])

    def _term(self, term: str, negated: bool, fields: list[tuple[str, str]], structure: Optional[list[str]] = None):
        d = self.d
        pattern = "%" + _escape_like(term) + "%"
        # argilla stores JSON as json.dumps writes it: non-ASCII characters as \uXXXX escapes. The raw scan
        # looks for that spelling (ASCII, so ASCII case folding is all it needs); the per-field check then
        # runs on the rows it lets through, unless the raw match cannot be anything but field text.
        escaped = "%" + _escape_like(json.dumps(term)[1:-1]) + "%"
        prefilter = d.like_raw(d.raw_text(Record.fields), escaped)
        low = term.lower()
        if structure is not None and not any(c in term for c in '"\\{}[]:,') and not any(low in w for w in structure):
            return not_(prefilter) if negated else prefilter
        exact = []
        for name, ftype in fields:
            if ftype == "text":
                exact.append(d.like(d.text(Record.fields, [name]), pattern))
            else:  # chat / custom: match the field's JSON text (messages, or whatever the custom field holds)
                node = d.node(Record.fields, [name])  # as JSON text, escapes kept
                exact.append(d.like_raw(cast(node, Text) if d.pg else node, escaped))
        # CASE makes the cheap raw scan run first: JSON is parsed only for rows that may match.
        hit = case((prefilter, or_(*exact)), else_=false())
        return not_(hit) if negated else hit

    # -- filters -----------------------------------------------------------------------------------------
    async def filter_condition(self, f: Filter):
        if isinstance(f, AndFilter):
            return and_(true(), *[await self.filter_condition(sub) for sub in f.filters])
        scope = f.scope
        if isinstance(scope, MetadataFilterScope):
            return await self._metadata_filter(f, scope)
        if isinstance(scope, ResponseFilterScope):
            return await self._response_filter(f, scope)
        if isinstance(scope, SuggestionFilterScope):
            return await self._suggestion_filter(f, scope)
        if isinstance(scope, RecordFilterScope):
            return self._record_filter(f, scope)
        raise UnprocessableEntityError(f"Cannot process filter scope {scope}")

    async def _metadata_filter(self, f: Filter, scope: MetadataFilterScope):
        mtype = await self.metadata_type(scope.metadata_property)
        keys = [scope.metadata_property]
        d = self.d
        if isinstance(f, TermsFilter):
            if mtype == MetadataPropertyType.terms:
                return d.any_in(Record.metadata_, keys, list(f.values))
            nums = []
            for v in f.values:
                try:
                    nums.append(float(v))
                except ValueError:
                    pass
            return d.number(Record.metadata_, keys).in_(nums) if nums else false()
        if isinstance(f, RangeFilter):
            if mtype == MetadataPropertyType.terms:
                return _range(d.text(Record.metadata_, keys), f.ge, f.le)
            return _range(d.number(Record.metadata_, keys), _num(f.ge), _num(f.le))
        raise UnprocessableEntityError(f"Cannot process filter {f}")

    async def _response_filter(self, f: Filter, scope: ResponseFilterScope):
        d = self.d
        user_cond = [Response.user_id == scope.user.id] if scope.user is not None else []
        if scope.question:
            _, qtype = await self.question(scope.question)
            keys = [scope.question, "value"]
            if isinstance(f, TermsFilter):
                value_cond = d.any_in(Response.values, keys, list(f.values))
            elif isinstance(f, RangeFilter):
                value_cond = d.any_in_range(Response.values, keys, _num(f.ge), _num(f.le))
            else:
                raise UnprocessableEntityError(f"Cannot process filter {f}")
            return exists().where(Response.record_id == Record.id, *user_cond, value_cond)

        if scope.property == "status" and isinstance(f, TermsFilter):
            values = set(f.values)
            conds = []
            if ResponseStatusFilter.pending in values:
                conds.append(~exists().where(Response.record_id == Record.id, *user_cond))
            statuses = [ResponseStatus(v) for v in values if v != ResponseStatusFilter.pending]
            if statuses:
                conds.append(
                    exists().where(Response.record_id == Record.id, Response.status.in_(statuses), *user_cond)
                )
            return or_(*conds) if conds else true()
        raise UnprocessableEntityError(f"Cannot process filter scope {scope}")

    async def _suggestion_filter(self, f: Filter, scope: SuggestionFilterScope):
        qid, _ = await self.question(scope.question)
        d = self.d
        prop = scope.property or "value"
        base = [Suggestion.record_id == Record.id, Suggestion.question_id == qid]
        if prop in ("value", "score"):
            col = Suggestion.value if prop == "value" else Suggestion.score
            if isinstance(f, TermsFilter):
                cond = d.any_in(col, [], list(f.values))
            elif isinstance(f, RangeFilter):
                cond = d.any_in_range(col, [], _num(f.ge), _num(f.le))
            else:
                raise UnprocessableEntityError(f"Cannot process filter {f}")
        elif prop == "agent" and isinstance(f, TermsFilter):
            cond = Suggestion.agent.in_(list(f.values))
        elif prop == "type" and isinstance(f, TermsFilter):
            cond = Suggestion.type.in_([SuggestionType(v) for v in f.values])
        else:
            raise UnprocessableEntityError(f"Cannot process filter on suggestion property `{prop}`")
        return exists().where(*base, cond)

    def _record_filter(self, f: Filter, scope: RecordFilterScope):
        prop = scope.property
        if prop in (RecordSortField.inserted_at, RecordSortField.updated_at):
            col = Record.inserted_at if prop == RecordSortField.inserted_at else Record.updated_at
            if isinstance(f, RangeFilter):
                return _range(col, _as_datetime(f.ge), _as_datetime(f.le))
            return col.in_([_as_datetime(v) for v in f.values])
        if not isinstance(f, TermsFilter):
            raise UnprocessableEntityError(f"Cannot process a range filter on record `{prop}`")
        if prop == RecordSortField.status:
            return Record.status.in_([RecordStatus(v) for v in f.values])
        if prop == RecordSortField.id:
            ids = []
            for v in f.values:
                try:
                    ids.append(UUID(str(v)))
                except ValueError:
                    pass
            return Record.id.in_(ids) if ids else false()
        if prop == RecordSortField.external_id:
            return Record.external_id.in_(list(f.values))
        raise UnprocessableEntityError(f"Cannot process filter on record `{prop}`")

    # -- sort ---------------------------------------------------------------------------------------------
    async def order_expressions(self, order: Order) -> list:
        d = self.d
        scope = order.scope
        expr = None
        if isinstance(scope, MetadataFilterScope):
            mtype = await self.metadata_type(scope.metadata_property)
            keys = [scope.metadata_property]
            if mtype == MetadataPropertyType.terms:
                expr = d.text(Record.metadata_, keys)
            else:
                expr = d.number(Record.metadata_, keys)
        elif isinstance(scope, RecordFilterScope):
            expr = {
                RecordSortField.id: Record.id,
                RecordSortField.external_id: Record.external_id,
                RecordSortField.inserted_at: Record.inserted_at,
                RecordSortField.updated_at: Record.updated_at,
                RecordSortField.status: Record.status,
            }.get(scope.property)
        elif isinstance(scope, SuggestionFilterScope):
            qid, qtype = await self.question(scope.question)
            prop = scope.property or "value"
            if prop == "score":
                col = d.number(Suggestion.score, [])
            elif prop == "value":
                col = d.number(Suggestion.value, []) if qtype == "rating" else d.text(Suggestion.value, [])
            elif prop == "agent":
                col = Suggestion.agent
            else:
                col = Suggestion.type
            expr = (
                select(col)
                .where(Suggestion.record_id == Record.id, Suggestion.question_id == qid)
                .limit(1)
                .scalar_subquery()
            )
        elif isinstance(scope, ResponseFilterScope):
            user_cond = [Response.user_id == scope.user.id] if scope.user is not None else []
            if scope.question:
                _, qtype = await self.question(scope.question)
                keys = [scope.question, "value"]
                agg = func.avg(d.number(Response.values, keys)) if qtype == "rating" else func.min(
                    d.text(Response.values, keys)
                )
            else:
                agg = func.min(cast(Response.status, Text))
            expr = select(agg).where(Response.record_id == Record.id, *user_cond).scalar_subquery()
        if expr is None:
            raise UnprocessableEntityError(f"Cannot sort by {scope}")
        ordered = expr.desc() if order.order == SortOrder.desc else expr.asc()
        return [ordered.nulls_last()]


def _num(v):
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise UnprocessableEntityError(f"Expected a number in a range filter, got {v!r}")
