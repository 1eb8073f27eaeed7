"""Security checks (issue 8): SQL only through parameters, PostgreSQL
credentials never printed, file paths inside input files never followed, and
exports that hold only the ledger asked for."""

from __future__ import annotations

import ast
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    POLICY_FILE,
    POSTGRES_SERVER,
    POSTGRES_UNREACHABLE,
    cli,
    drop_schema,
    no_default_db,  # noqa: F401 (an autouse fixture)
    postgres_available,
)

from ledger.cli import main
from ledger.cli.common import shown_location as _shown
from ledger.service import Ledger
from ledger.store import store_environment
from ledger.vocabulary.errors import LedgerError

LEDGER_CODE = Path(__file__).resolve().parent.parent / "ledger"
SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "DROP ", " FROM ", " WHERE ")
# What may be spliced into SQL text: constants (ALL_CAPS names), placeholders, and names
# that only ever hold identifiers: the schema (which `store_environment` checks is a plain
# lower-case identifier, tested below), table and column names (a read model's tables: its
# constant TABLES), the count of placeholders.
IDENTIFIER_NAMES = {
    "schema", "env", "datastore", "column", "columns", "marks", "prefix", "chain", "_chain_table", "index", "table",
    "notification_column", "events_table_name", "type_name", "types", "self", "join", "split", "len",
}


def splice_is_allowed(expression: ast.AST) -> bool:
    """True when every name in `expression` is a constant or an identifier-only name."""
    names = [n.id for n in ast.walk(expression) if isinstance(n, ast.Name)]
    names += [n.attr for n in ast.walk(expression) if isinstance(n, ast.Attribute)]
    return all(name.lstrip("_").isupper() or name in IDENTIFIER_NAMES for name in names)


def sql_strings() -> Iterator[tuple[str, int, ast.AST]]:
    """Every string or f-string in ledger/ that looks like SQL, with its file and line."""
    for path in sorted(LEDGER_CODE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            if any(word in text for word in SQL_WORDS):  # the code writes SQL in capitals; prose is not SQL
                yield path.name, node.lineno, node


def test_sql_is_never_built_from_values():
    """f-strings that make SQL splice only constant names and the checked schema; no % or .format."""
    spliced: dict[str, ast.AST] = {}
    for name, line, node in sql_strings():
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    spliced[f"{name}:{line}: {ast.unparse(part.value)}"] = part.value
    unexpected = [where for where, expression in spliced.items() if not splice_is_allowed(expression)]
    assert not unexpected, f"SQL built from values: {unexpected}"
    assert not splice_is_allowed(ast.parse("event.buyer", mode="eval").body)  # the rule can fail
    assert any(where.endswith("env['POSTGRES_SCHEMA']") for where in spliced)  # the check sees the real code
    for path in sorted(LEDGER_CODE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            # "SELECT ... %s" % value, or "SELECT {}".format(value)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
                assert not any(w in str(node.left.value) for w in SQL_WORDS), f"{path.name}:{node.lineno}"
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
                    and isinstance(node.func.value, ast.Constant)):
                assert not any(w in str(node.func.value.value) for w in SQL_WORDS), f"{path.name}:{node.lineno}"


@pytest.mark.parametrize("schema", ["a;drop schema public", "Public", "x y", "t--", "a.b", "1abc", "é", "a" * 64])
def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(schema: str):
    with pytest.raises(LedgerError) as caught:
        store_environment(f"postgresql://u@127.0.0.1/test?schema={schema}")
    assert caught.value.field == "db"


def test_values_with_sql_in_them_are_only_data(tmp_path: Path):
    """A buyer id and a key full of SQL are recorded and read back as text; the tables survive."""
    db = str(tmp_path / "ledger.db")
    cli("init", "--db", db)
    cli("policy", "load", str(POLICY_FILE), "--db", db)
    hostile = "B1'); DROP TABLE ledger_index; --"
    cli("append", "buyer_registered", "--effective", "2025-01-02", "--buyer", hostile, "--name", "x' OR '1'='1",
        "--country", "GB", "--key", "k' OR 1=1 --", "--db", db)
    logged = json.loads(cli("log", "--json", "--buyer", hostile, "--db", db).stdout)
    assert [(e["buyer"], e["name"], e["key"]) for e in logged] == [(hostile, "x' OR '1'='1", "k' OR 1=1 --")]
    assert json.loads(cli("log", "--json", "--buyer", "x' OR '1'='1", "--db", db).stdout) == []
    with Ledger(db) as ledger:
        assert ledger.count() == 2


# ---------------------------------------------------------------- credentials

SECRET = "s3cretPW"


@pytest.mark.parametrize("url", [
    f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test?schema=s",
    f"postgresql://postgres:p@{SECRET}@127.0.0.1:5432/test?schema=s",
    f"postgresql://postgres@127.0.0.1:5432/test?schema=s&password={SECRET}",
    f"postgres://postgres:{SECRET}@[::1]:5432/test",
])
def test_a_shown_location_never_holds_the_password(url: str):
    shown = _shown(url)
    assert SECRET not in shown and "***" in shown
    assert "schema=s" in shown or "schema" not in url


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["creditledger", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize("command", [["log"], ["init"], ["summary"]])
def test_a_password_is_not_printed_when_the_server_cannot_be_reached(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Port 1 refuses at once: the driver's message is shown, the password never."""
    code, out, err = run_main(monkeypatch, capsys, *command, "--db", f"postgresql://u:{SECRET}@127.0.0.1:1/test")
    assert code == 1 and err.startswith("error: db: ") and len(err.splitlines()) == 1
    assert SECRET not in out + err


def test_a_password_from_the_environment_is_not_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("PGPASSWORD", SECRET)
    monkeypatch.setenv("PGUSER", "someone")
    code, out, err = run_main(monkeypatch, capsys, "log", "--db", "postgresql://127.0.0.1:1/test")
    assert code == 1 and SECRET not in out + err


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    schema = "t_" + uuid.uuid4().hex[:16]
    try:
        yield schema
    finally:
        drop_schema(schema)


@pytest.mark.postgres
@pytest.mark.parametrize("password", [SECRET, f"p@{SECRET}"])
def test_a_password_is_not_printed_by_a_reachable_server(
    password: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """The test server trusts every password: init, a missing ledger, a missing database."""
    url = f"postgresql://postgres:{password}@127.0.0.1:5432/test?schema={postgres_schema}"
    code, out, err = run_main(monkeypatch, capsys, "log", "--db", url)
    assert code == 1 and "there is no ledger at" in err and SECRET not in out + err
    code, out, err = run_main(monkeypatch, capsys, "init", "--db", url)
    assert code == 0 and "created an empty ledger at postgresql://postgres:***@" in out and SECRET not in out + err
    in_query = f"postgresql://postgres@127.0.0.1:5432/test?schema={postgres_schema}x&password={SECRET}"
    code, out, err = run_main(monkeypatch, capsys, "log", "--db", in_query)
    assert code == 1 and SECRET not in out + err
    missing_db = f"postgresql://postgres:{password}@127.0.0.1:5432/no_such_database_here"
    code, out, err = run_main(monkeypatch, capsys, "log", "--db", missing_db)
    assert code == 1 and "no_such_database_here" in err and SECRET not in out + err


# ---------------------------------------------------------------- file paths inside input files

@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    """Every file the process opens while the test runs (a Python audit hook; hooks
    cannot be removed, so this one records only while a test asks it to)."""
    opened: list[str] = []
    _RECORDING.append(opened)
    try:
        yield opened
    finally:
        _RECORDING.remove(opened)


_RECORDING: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING and event == "open" and isinstance(args[0], (str, Path)):
        _RECORDING[-1].append(str(args[0]))


sys.addaudithook(_audit)

POLICY_TEXT = POLICY_FILE.read_text()


def secret_files(tmp_path: Path) -> list[Path]:
    secret = tmp_path / "secret"
    secret.mkdir()
    files = [secret / "other.toml", secret / "events.csv"]
    files[0].write_text(POLICY_TEXT)
    files[1].write_text("type,effective,buyer,name,country\nbuyer_registered,2025-01-02,B7,Secret,GB\n")
    return files


def test_paths_named_inside_input_files_are_never_opened(
    tmp_path: Path, opened_files: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Events, a policy and a scenario that name other files, absolute and relative:
    each is refused or read as plain text, and the named files are never opened."""
    policy, events = secret_files(tmp_path)
    db = str(tmp_path / "ledger.db")
    cli("init", "--db", db)
    cli("policy", "load", str(POLICY_FILE), "--db", db)
    relative = "secret/other.toml"
    inputs = {
        "include.toml": f'include = "{policy}"\n[[events]]\ntype = "buyer_registered"\n',
        "policy_path.toml": f'policy = "{relative}"\n',
        "terms_path.jsonl": json.dumps({"type": "policy_amended", "effective": "2025-02-01", "terms": str(policy)}),
        "file_field.csv": f"type,effective,buyer,name,country,file\nbuyer_registered,2025-01-02,B8,A,GB,{events}\n",
        "policy_term.toml": POLICY_TEXT.replace("[policy]\n", f'[policy]\nfile = "{policy}"\n'),
        "names.jsonl": json.dumps({"type": "buyer_registered", "effective": "2025-01-02", "buyer": str(events),
                                   "name": f"file://{policy}", "country": "GB"}),
    }
    for name, text in inputs.items():
        (tmp_path / name).write_text(text + "\n")
    opened_files.clear()  # what the setting up opened (the secret files among them)
    results = [
        run_main(monkeypatch, capsys, "import", str(tmp_path / name), "--db", db) for name in inputs
    ] + [
        run_main(monkeypatch, capsys, "policy", "load", str(tmp_path / name), "--db", db)
        for name in ("policy_path.toml", "policy_term.toml")
    ] + [
        run_main(monkeypatch, capsys, "scenario", "run", str(tmp_path / name))
        for name in ("include.toml", "policy_path.toml", "policy_term.toml")
    ]
    assert [code for code, _, _ in results] == [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1]  # a path as a buyer id is only text
    assert {str(tmp_path / name) for name in inputs} <= set(opened_files)  # the hook sees what is read
    assert not {str(policy), str(events), relative} & set(opened_files)
    assert not [f for f in opened_files if "secret" in f], opened_files
    with Ledger(db) as ledger:
        assert [e.buyer for e in ledger.log(types=["buyer_registered"])] == [str(events)]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- exports hold only the ledger asked for

def book(db: str, buyer: str, name: str) -> None:
    cli("init", "--db", db)
    cli("policy", "load", str(POLICY_FILE), "--db", db)
    cli("append", "buyer_registered", "--effective", "2025-01-02", "--buyer", buyer, "--name", name,
        "--country", "GB", "--db", db)
    cli("append", "limit_granted", "--effective", "2025-01-03", "--buyer", buyer, "--amount", "5000", "--db", db)
    cli("append", "invoice_issued", "--effective", "2025-02-10", "--buyer", buyer, "--invoice", f"{buyer}-INV",
        "--amount", "777.77" if buyer == "A1" else "333.33", "--due", "2025-03-10", "--db", db)


EXPORTS = [
    ["log", "--json"], ["summary", "--json"], ["exposure", "--as-of", "2025-06-30", "--json"],
    ["declare", "--period", "2025-Q1"], ["turnover", "--period", "2025-Q1", "--json"],
    ["obligations", "--as-of", "2025-12-31", "--json"], ["premium", "--as-of", "2025-12-31", "--json"],
    ["claims", "--as-of", "2025-12-31", "--json"], ["policy", "show", "--json"],
]


def exports_hold_only_their_own(first: str, second: str) -> None:
    for command in EXPORTS:
        mine = cli(*command, "--db", first).stdout
        theirs = cli(*command, "--db", second).stdout
        for marker in ("B2", "Beta Secret", "333.33"):
            assert marker not in mine, (command, mine)
        for marker in ("A1", "Alpha Secret", "777.77"):
            assert marker not in theirs, (command, theirs)
    only_a1 = json.loads(cli("log", "--json", "--buyer", "A1", "--db", first).stdout)
    assert {e.get("buyer") for e in only_a1} == {"A1"}
    known = json.loads(cli("log", "--json", "--known-at", "2000-01-01", "--db", first).stdout)
    assert known == []


def test_exports_of_two_sqlite_ledgers_hold_only_their_own(tmp_path: Path):
    first, second = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    book(first, "A1", "Alpha Secret")
    book(second, "B2", "Beta Secret")
    exports_hold_only_their_own(first, second)


@pytest.mark.postgres
def test_exports_of_two_postgres_schemas_in_one_database_hold_only_their_own():
    if not postgres_available():
        pytest.skip(POSTGRES_UNREACHABLE)
    schemas = ["t_" + uuid.uuid4().hex[:16] for _ in range(2)]
    try:
        first, second = (f"{POSTGRES_SERVER}?schema={schema}" for schema in schemas)
        book(first, "A1", "Alpha Secret")
        book(second, "B2", "Beta Secret")
        exports_hold_only_their_own(first, second)
    finally:
        for schema in schemas:
            drop_schema(schema)
