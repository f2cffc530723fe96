"""The classifier's data: helper catalogue and large-table list, validated and loaded once per file."""

from __future__ import annotations

import dataclasses
import marshal
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from include.classification.classes import MigrationClass

HERE = Path(__file__).resolve().parent
DEFAULT_CATALOGUE = str(HERE / "catalogue.yaml")
DEFAULT_TABLES = str(HERE / "tables.yaml")
TARGETS = ("gitlab_com", "self_managed")
TABLE_SIZES = ("large", "over_limit")  # from less to more severe
# Real post-deploy migrations are a few kilobytes; anything this big is not one Rails would be asked to run.
DEFAULT_MAX_BYTES = 256 * 1024

# Parsed YAML of the shipped data files, kept next to the package's bytecode (see _cached_yaml).
_YAML_CACHE_FORMAT = 1
_PARTITION_SUFFIX = re.compile(r"_\d+$")


class CatalogueError(ValueError):
    """The catalogue or table list is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class HelperRule:
    """What one helper does at PDM time, and where its table argument is."""

    name: str
    cls: MigrationClass
    rationale: str
    table: tuple[int | str, ...] = ()
    # Other tables the helper locks (a foreign key's referenced table): each found one counts for size.
    locks: tuple[int | str, ...] = ()
    # Argument semantics: (argument index or keyword, {literal text: (class, rationale)}); a literal not
    # listed, or an argument that is not a literal, keeps `cls` (written as the strictest outcome).
    when: tuple[int | str, dict[str, tuple[MigrationClass, str]]] | None = None


@dataclass(frozen=True)
class HelperClass:
    """One of GitLab's bounded database helper classes (`Gitlab::Database::UnidirectionalCopyTrigger`).

    `constructors` build an instance (`on_table`, `new`) and do nothing on the database; `table` says where
    the constructor's table argument is; `methods` are what an instance (or the class) may be asked to do.
    A method not listed is `unknown`: the class is bounded only as far as the catalogue says.
    """

    name: str
    constructors: frozenset[str]
    table: tuple[int | str, ...]
    methods: dict[str, HelperRule]


@dataclass(frozen=True)
class Catalogue:
    """The helper catalogue (catalogue.yaml) in the shape the engine reads it."""

    helpers: dict[str, HelperRule]
    receiver_methods: dict[str, HelperRule]
    qualified: dict[str, HelperRule]
    neutral_methods: frozenset[str]
    neutral_receivers: frozenset[str]
    dynamic_methods: frozenset[str]
    sql_methods: frozenset[str]
    predicates: dict[str, dict[str, bool | None]]
    schemas: dict[str, str]
    helper_classes: dict[str, HelperClass] = dataclasses.field(default_factory=dict)
    # Receivers whose `?` methods check the environment or read a setting: a guard, never a write.
    guard_receivers: frozenset[str] = frozenset()
    # Receivers whose argument-less, non-bang calls read one setting (`Gitlab::CurrentSettings.x_enabled`).
    setting_readers: frozenset[str] = frozenset()
    # GitLab models used by migrations whose table is not Rails' default: constant -> table.
    model_tables: dict[str, str] = dataclasses.field(default_factory=dict)
    # Tables that only track queued background work: a row write there is `background`, not `data`.
    bookkeeping_tables: frozenset[str] = frozenset()
    # Tables of the batched-migration machinery: deleting their rows is `background` (what
    # `delete_batched_background_migration` does); any other write there stays `data`.
    bookkeeping_deletes: frozenset[str] = frozenset()
    # Redis commands that only read: next to database writes, the writes decide the class.
    redis_reads: frozenset[str] = frozenset()
    # Classes whose objects only build queries or values (`Gitlab::Pagination::Keyset::Order`): a local
    # built from one (`.build`, `.new`) answers every uncatalogued call without touching the database.
    query_builders: frozenset[str] = frozenset()
    # Superclasses (a suffix of the superclass as written) that make a class in a migration a model.
    model_superclasses: frozenset[str] = frozenset()
    # Mixins that add batching or query helpers only: a model that includes just these stays plain.
    plain_mixins: frozenset[str] = frozenset()
    # Calls whose first argument names the table of the model or relation they return.
    model_factories: frozenset[str] = frozenset()
    # Receiver-less iterators whose first argument names the table their block's batches come from.
    table_iterators: frozenset[str] = frozenset()
    # Index helpers -> where the index name is (keyword or positional index, in order): a name created and
    # dropped inside one `up` is a temporary index (cleanup).
    index_creators: dict[str, tuple[int | str, ...]] = dataclasses.field(default_factory=dict)
    index_droppers: dict[str, tuple[int | str, ...]] = dataclasses.field(default_factory=dict)
    # Derived once from the lists above (regular expressions the engine matches class text with).
    model_superclass: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)
    plain_mixin: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Longest first: a name that is a prefix of another never cuts it short.
        superclasses = "|".join(map(re.escape, sorted(self.model_superclasses, key=lambda s: (-len(s), s))))
        mixins = "|".join(map(re.escape, sorted(self.plain_mixins, key=lambda s: (-len(s), s))))
        object.__setattr__(
            self, "model_superclass", re.compile(f"({superclasses})$" if superclasses else "(?!)")
        )
        object.__setattr__(
            self,
            "plain_mixin",
            re.compile(rf"\(?\s*(::)?({mixins})\s*\)?|,|\s" if mixins else r",|\s"),
        )


@dataclass(frozen=True)
class TableList:
    """Large and over-limit tables (tables.yaml): table name -> size."""

    sizes: dict[str, str]

    def size_of(self, table: str | None) -> str | None:
        """Size class of a table, schema prefix ignored."""
        if not table:
            return None
        size = self.sizes.get(table)
        if size is None:
            name = table.rsplit(".", 1)[-1].strip('"')
            size = self.sizes.get(name)
            if size is None:
                # A partition (`ci_builds_101`, `p_ci_builds_101`) counts like its parent.
                parent = _PARTITION_SUFFIX.sub("", name)
                if parent != name:
                    size = self.sizes.get(parent) or self.sizes.get(f"p_{parent}")
        return size


@dataclass(frozen=True)
class ClassifierConfig:
    """Which installation the migration is judged for, and which data files describe the helpers.

    `target` is `gitlab_com` (default) or `self_managed`: environment guards such as `Gitlab.com?` are
    evaluated for it. Files larger than `max_bytes` are not parsed (class `unknown`).
    """

    target: str = "gitlab_com"
    catalogue_path: str = DEFAULT_CATALOGUE
    tables_path: str = DEFAULT_TABLES
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"ClassifierConfig.target: {self.target!r} is not one of {', '.join(TARGETS)}")

    def catalogue(self) -> Catalogue:
        """The helper catalogue, loaded once per process and file (a CLI run classifies thousands of files)."""
        return _loaded(self.catalogue_path, self.tables_path)[0]

    def tables(self) -> TableList:
        """The large-table list, loaded once per process and file."""
        return _loaded(self.catalogue_path, self.tables_path)[1]


@lru_cache(maxsize=32)
def _loaded(catalogue_path: str, tables_path: str) -> tuple[Catalogue, TableList]:
    return load_catalogue(catalogue_path), load_tables(tables_path)


def load_catalogue(path: str | Path) -> Catalogue:
    """The catalogue at `path`, parsed once per file version (cached on path and mtime)."""
    path = str(path)
    return _load_catalogue(path, _mtime(path))


def load_tables(path: str | Path) -> TableList:
    """The table list at `path`, parsed once per file version (cached on path and mtime)."""
    path = str(path)
    return _load_tables(path, _mtime(path))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read ({exc.strerror})") from exc


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read ({exc.strerror})") from exc
    data = _cached_yaml(path, raw)
    if data is _MISS:
        data = _parse_yaml(path, raw)
        _store_yaml(path, raw, data)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CatalogueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _parse_yaml(path: str, raw: bytes) -> Any:
    import yaml  # only when the file changed: the import and the parse are most of a CLI run's start-up

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    if "\r" in text:  # as text-mode reading did: universal newlines
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader (C or pure Python)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML ({exc})") from exc


_MISS = object()


def _cache_file(path: str) -> str | None:
    """Where the parsed form of a shipped data file is kept: beside the package bytecode, like a .pyc.

    Only the files shipped in the package are cached (their number is fixed); a catalogue passed with
    --catalogue is parsed on each run. Honors PYTHONPYCACHEPREFIX.
    """
    folder, name = os.path.split(os.path.abspath(path))
    if folder != str(HERE):
        return None
    tag = sys.implementation.cache_tag
    if tag is None:
        return None
    prefix = sys.pycache_prefix
    if prefix:
        cache_dir = os.path.join(prefix, folder.lstrip(os.sep))
    else:
        cache_dir = os.path.join(folder, "__pycache__")
    return os.path.join(cache_dir, f"{name}.{tag}.marshal")


def _cached_yaml(path: str, raw: bytes) -> Any:
    """The parsed YAML stored for exactly these bytes, or _MISS. Never stale: the cache holds the whole
    source it was parsed from and is used only when that equals the file as it is now."""
    cache = _cache_file(path)
    if cache is None:
        return _MISS
    try:
        with open(cache, "rb") as handle:
            stored = marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return _MISS
    if (
        type(stored) is tuple
        and len(stored) == 3
        and stored[0] == _YAML_CACHE_FORMAT
        and type(stored[1]) is bytes
        and stored[1] == raw
    ):
        return stored[2]
    return _MISS


def _store_yaml(path: str, raw: bytes, data: Any) -> None:
    """Keep the parsed YAML for the next run; best effort (read-only installs simply parse each time)."""
    cache = _cache_file(path)
    if cache is None or sys.dont_write_bytecode:
        return
    try:
        payload = marshal.dumps((_YAML_CACHE_FORMAT, raw, data))
    except ValueError:  # a YAML type marshal cannot hold (a date, say): nothing to keep
        return
    temporary = f"{cache}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(payload)
        os.replace(temporary, cache)  # atomic: a concurrent run reads the old file or the new one
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass


_CATALOGUE_KEYS = {
    "version",
    "helpers",
    "receiver_methods",
    "qualified",
    "neutral_methods",
    "neutral_receivers",
    "dynamic_methods",
    "sql_methods",
    "predicates",
    "schemas",
    "helper_classes",
    "guard_receivers",
    "setting_readers",
    "model_tables",
    "bookkeeping_tables",
    "bookkeeping_deletes",
    "redis_reads",
    "query_builders",
    "model_superclasses",
    "plain_mixins",
    "model_factories",
    "table_iterators",
    "index_names",
}
# Sections without which the engine would read less than it can (never a stricter class): required.
_SPELLING_SECTIONS = (
    "model_superclasses",
    "plain_mixins",
    "model_factories",
    "table_iterators",
    "index_names",
)
_HELPER_CLASS_KEYS = {"constructors", "table", "methods"}
_RULE_KEYS = {"class", "table", "locks", "rationale", "when"}


@lru_cache(maxsize=16)
def _load_catalogue(path: str, _mtime: float) -> Catalogue:
    name = Path(path).name
    data = _read_yaml(path)
    unknown = sorted(set(data) - _CATALOGUE_KEYS)
    if unknown:
        raise CatalogueError(
            f"{name}: unknown section {unknown[0]!r} (expected {', '.join(sorted(_CATALOGUE_KEYS))})"
        )

    def rules(section: str) -> dict[str, HelperRule]:
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise CatalogueError(f"{name}: {section}: expected a mapping of helper -> rule")
        return {str(key): _rule(name, section, str(key), value) for key, value in entries.items()}

    def names(section: str) -> frozenset[str]:
        entries = data.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise CatalogueError(f"{name}: {section}: expected a list of names")
        return frozenset(e.removeprefix("::") for e in entries)

    predicates: dict[str, dict[str, bool | None]] = {}
    for target, table in (data.get("predicates") or {}).items():
        if target not in TARGETS:
            raise CatalogueError(
                f"{name}: predicates.{target}: unknown target (expected {', '.join(TARGETS)})"
            )
        for check, value in (table or {}).items():
            if value not in (True, False, None):
                raise CatalogueError(f"{name}: predicates.{target}.{check}: expected true, false or null")
        predicates[target] = {str(k).removeprefix("::"): v for k, v in (table or {}).items()}
    schemas = data.get("schemas") or {}
    if not isinstance(schemas, dict):
        raise CatalogueError(f"{name}: schemas: expected a mapping of gitlab_schema -> database")
    catalogue = Catalogue(
        helpers=rules("helpers"),
        receiver_methods=rules("receiver_methods"),
        qualified={k.removeprefix("::"): v for k, v in rules("qualified").items()},
        neutral_methods=names("neutral_methods"),
        neutral_receivers=names("neutral_receivers"),
        dynamic_methods=names("dynamic_methods"),
        sql_methods=names("sql_methods"),
        predicates=predicates,
        schemas={str(k): str(v) for k, v in schemas.items()},
        helper_classes=_helper_classes(name, data.get("helper_classes") or {}),
        guard_receivers=names("guard_receivers"),
        setting_readers=names("setting_readers"),
        model_tables=_model_tables(name, data.get("model_tables") or {}),
        bookkeeping_tables=names("bookkeeping_tables"),
        bookkeeping_deletes=names("bookkeeping_deletes"),
        redis_reads=names("redis_reads"),
        query_builders=frozenset(n.removeprefix("::") for n in names("query_builders")),
        model_superclasses=names("model_superclasses"),
        plain_mixins=names("plain_mixins"),
        model_factories=names("model_factories"),
        table_iterators=names("table_iterators"),
        index_creators=_index_names(name, data.get("index_names") or {}, "creates"),
        index_droppers=_index_names(name, data.get("index_names") or {}, "drops"),
    )
    missing = [section for section in _SPELLING_SECTIONS if not data.get(section)]
    if missing:
        # Fail closed: without them a batch's table (and so its size) or an inner model would go unseen.
        raise CatalogueError(
            f"{name}: missing section {missing[0]!r} (a catalogue must say how models, batching and "
            "indexes are spelled; copy it from the shipped catalogue.yaml)"
        )
    return catalogue


def _index_names(name: str, entries: Any, kind: str) -> dict[str, tuple[int | str, ...]]:
    """`index_names.creates` / `.drops`: helper -> where its index name argument is."""
    if not isinstance(entries, dict) or set(entries) - {"creates", "drops"}:
        raise CatalogueError(f"{name}: index_names: expected a mapping with creates and drops")
    helpers = entries.get(kind) or {}
    if not isinstance(helpers, dict):
        raise CatalogueError(f"{name}: index_names.{kind}: expected a mapping of helper -> where the name is")
    found: dict[str, tuple[int | str, ...]] = {}
    for helper, where in helpers.items():
        spec = tuple(where) if isinstance(where, list) else (where,)
        if not spec or not all(isinstance(s, int | str) and not isinstance(s, bool) for s in spec):
            raise CatalogueError(
                f"{name}: index_names.{kind}.{helper}: expected a keyword, a position or a list of them"
            )
        found[str(helper)] = spec
    return found


def _model_tables(name: str, entries: Any) -> dict[str, str]:
    if not isinstance(entries, dict) or not all(isinstance(v, str) and v for v in entries.values()):
        raise CatalogueError(f"{name}: model_tables: expected a mapping of model constant -> table name")
    return {str(k).removeprefix("::"): v for k, v in entries.items()}


def _helper_classes(name: str, entries: Any) -> dict[str, HelperClass]:
    """The `helper_classes` section: constant -> constructors, table argument and catalogued methods."""
    if not isinstance(entries, dict):
        raise CatalogueError(f"{name}: helper_classes: expected a mapping of class -> description")
    classes = {}
    for key, value in entries.items():
        constant = str(key).removeprefix("::")
        where = f"{name}: helper_classes.{constant}"
        if not isinstance(value, dict):
            raise CatalogueError(f"{where}: expected a mapping with constructors, table and methods")
        extra = sorted(set(value) - _HELPER_CLASS_KEYS)
        if extra:
            raise CatalogueError(f"{where}: unknown key {extra[0]!r} (expected constructors, table, methods)")
        constructors = value.get("constructors") or []
        if not isinstance(constructors, list) or not all(isinstance(c, str) for c in constructors):
            raise CatalogueError(f"{where}: constructors: expected a list of method names")
        methods = value.get("methods") or {}
        if not isinstance(methods, dict) or not methods:
            raise CatalogueError(f"{where}: methods: expected a mapping of method -> rule")
        table = _rule(
            name, "helper_classes", constant, {"class": "noop", "rationale": "-", "table": value.get("table")}
        )
        classes[constant] = HelperClass(
            constant,
            frozenset(constructors),
            table.table,
            {
                str(m): _rule(name, f"helper_classes.{constant}.methods", str(m), r)
                for m, r in methods.items()
            },
        )
    return classes


def _rule(name: str, section: str, key: str, value: Any) -> HelperRule:
    where = f"{name}: {section}.{key}"
    if not isinstance(value, dict):
        raise CatalogueError(f"{where}: expected a mapping with class and rationale")
    extra = sorted(set(value) - _RULE_KEYS)
    if extra:
        raise CatalogueError(f"{where}: unknown key {extra[0]!r} (expected class, table, locks, rationale)")
    if "class" not in value:
        raise CatalogueError(f"{where}: missing class")
    try:
        cls = MigrationClass.parse(value["class"])
    except ValueError as exc:
        raise CatalogueError(f"{where}: {exc}") from None
    rationale = value.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        raise CatalogueError(f"{where}: missing rationale (one line saying why this class)")
    specs = []
    for field in ("table", "locks"):
        table = value.get(field)
        spec = table if isinstance(table, list) else ([] if table is None else [table])
        for item in spec:
            if isinstance(item, bool) or not isinstance(item, int | str):
                raise CatalogueError(
                    f"{where}: {field}: expected an argument index, a keyword name or a list of them"
                )
        specs.append(tuple(spec))
    return HelperRule(key, cls, rationale.strip(), specs[0], specs[1], _when(where, value.get("when")))


def _when(where: str, value: Any) -> tuple[int | str, dict[str, tuple[MigrationClass, str]]] | None:
    """`when: {argument: 2, values: {true: {class: cleanup, rationale: ...}}}`: the class by an argument."""
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != {"argument", "values"}
        or not isinstance(value["values"], dict)
    ):
        raise CatalogueError(
            f"{where}: when: expected {{argument: index or keyword, values: {{literal: rule}}}}"
        )
    argument = value["argument"]
    if isinstance(argument, bool) or not isinstance(argument, int | str):
        raise CatalogueError(f"{where}: when.argument: expected an argument index or a keyword name")
    cases = {}
    for literal, rule in value["values"].items():
        text = str(literal).lower() if isinstance(literal, bool) or literal is None else str(literal)
        text = "nil" if literal is None else text
        if not isinstance(rule, dict) or "class" not in rule or not str(rule.get("rationale") or "").strip():
            raise CatalogueError(f"{where}: when.values.{text}: expected {{class, rationale}}")
        try:
            cases[text] = (MigrationClass.parse(rule["class"]), str(rule["rationale"]).strip())
        except ValueError as exc:
            raise CatalogueError(f"{where}: when.values.{text}: {exc}") from None
    return argument, cases


@lru_cache(maxsize=16)
def _load_tables(path: str, _mtime: float) -> TableList:
    name = Path(path).name
    data = _read_yaml(path)
    unknown = sorted(set(data) - set(TABLE_SIZES))
    if unknown:
        raise CatalogueError(f"{name}: unknown size {unknown[0]!r} (expected {', '.join(TABLE_SIZES)})")
    sizes: dict[str, str] = {}
    for size in TABLE_SIZES:  # over_limit last: it wins for a table listed twice
        entries = data.get(size) or []
        if not isinstance(entries, list):
            raise CatalogueError(f"{name}: {size}: expected a list of table names")
        for index, table in enumerate(entries):
            if not isinstance(table, str) or not table.strip():
                raise CatalogueError(f"{name}: {size}[{index}]: expected a table name")
            sizes[table.strip().lstrip(":")] = size
    return TableList(sizes)
