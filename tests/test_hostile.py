"""Hostile input (issue 8): every file of `tests/data/hostile/` and a list of bad
values, through every entry point that takes them.

Entry points: `import` (TOML, JSON Lines, JSON, CSV), `policy load`, `append
TYPE --field value`, `scenario run`, and the query options (`--period`,
`--as-of`, `--known-at`). In-process through `main()` (exactly what a user
sees) for every case, and as real subprocesses of the installed script for a
representative subset. Each case must give exit 1, one line on stderr naming
the file, line and field where they exist, no traceback, and leave the
ledger's event count unchanged. The 100 MB line is made in tmp_path at test
time, never committed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import DATA, POLICY_FILE, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.adapters.eventfiles import MAX_LINE_CHARS
from ledger.cli import main
from ledger.service import Ledger

HOSTILE = DATA / "hostile"
SCRIPT = Path(sys.executable).parent / "creditledger"

# file -> (line, field, words of the rule). None: the refusal has no line (or field) to name.
IMPORT_CASES: dict[str, tuple[int | None, str | None, str]] = {
    # TOML
    "malformed.toml": (3, None, "malformed TOML"),
    "bare_feb30.toml": (3, None, "malformed TOML: Invalid date"),
    "feb30.toml": (2, "effective", "'2025-02-30' is not a valid date"),
    "float_amount.toml": (2, "amount", "1500.0 is not a decimal string"),
    "text_amount.toml": (2, "amount", "'twelve pounds' is not a decimal number"),
    "thirty_decimals.toml": (2, "amount", "has more decimals than GBP allows"),
    "empty_amount.toml": (2, "amount", "is required for payment_received"),
    "huge_amount.toml": (2, "amount", "above the largest amount"),
    "exponent_amount.toml": (2, "amount", "is not a decimal number"),
    "negative_amount.toml": (2, "amount", "is negative"),
    "zero_invoice.toml": (2, "amount", "must be above 0"),
    "huge_integer.toml": (6, None, "Exceeds the limit (4300 digits)"),
    "unknown_type.toml": (2, "type", "'invoice_paid' is not an event type"),
    "missing_type.toml": (2, "type", "is required"),
    "unknown_field.toml": (2, "colour", "is not a field of payment_received"),
    "missing_field.toml": (2, "amount", "is required for payment_received"),
    "wrong_type_buyer.toml": (2, "buyer", "Expected `str`, got `array`"),
    "timestamp_effective.toml": (2, "effective", "is a date, not a timestamp"),
    "year_3000.toml": (2, "effective", "3000-01-01 is out of range"),
    "control_in_name.toml": (2, "name", "without control characters"),
    "bidi_in_buyer.toml": (2, "buyer", "without control characters"),
    "line_separator_in_name.toml": (2, "name", "without control characters"),
    "newline_in_key.toml": (2, "key", "without control characters"),
    "long_name.toml": (2, "name", "length <= 200"),
    "empty.toml": (None, None, "has no events"),
    "events_not_array.toml": (None, None, "must be arrays of tables"),
    "unknown_table.toml": (None, None, "'include' is not a table of an events file"),
    "terms_as_path.toml": (2, "policy", "must be a table"),
    "contradictory_policy.toml": (None, "policy.per_loss_deductible", "not a proportional one"),
    "deep_nesting.toml": (None, None, "nested too deeply"),
    "utf16.toml": (1, None, "is not UTF-8 text"),
    # JSON Lines
    "malformed.jsonl": (2, None, "malformed JSON"),
    "not_an_object.jsonl": (None, None, "item 1 of the array is not a JSON object"),
    "float_amount.jsonl": (1, "amount", "1.5 is not a decimal string"),
    "bool_amount.jsonl": (1, "amount", "True is not a decimal string"),
    "number_out_of_range.jsonl": (1, None, "malformed JSON: Number out of range"),
    "null_type.jsonl": (1, "type", "is required"),
    "object_type.jsonl": (1, "type", "is not an event type"),
    "feb30.jsonl": (1, "effective", "'2025-02-30' is not a valid date"),
    "newline_field_name.jsonl": (1, "a\\nb", "is not a field of payment_received"),
    "nul_in_buyer.jsonl": (1, "buyer", "without control characters"),
    "c1_control_in_key.jsonl": (1, "key", "without control characters"),
    "lone_surrogate.jsonl": (1, None, "malformed JSON"),
    "wrong_date_type.jsonl": (1, "effective", "20250201 is not a valid date"),
    "bad_recorded.jsonl": (1, "recorded", "'yesterday' is not a timestamp"),
    "bad_id.jsonl": (1, "id", "Invalid UUID"),
    "foreign_without_rate.jsonl": (1, "fx_rate", "needs fx_rate"),
    "empty.jsonl": (None, None, "has no events"),
    "deep_nesting.jsonl": (1, None, "nested too deeply"),
    "not_utf8.jsonl": (1, None, "is not UTF-8 text"),
    # JSON (one array, as `log --json` prints): events are numbered by their place
    "malformed.json": (None, None, "malformed JSON"),
    "array_of_numbers.json": (None, None, "item 1 of the array is not a JSON object"),
    "feb30.json": (1, "effective", "'2025-02-30' is not a valid date"),
    "deep_nesting.json": (None, None, "nested too deeply"),
    # CSV
    "empty.csv": (1, None, "a CSV needs a header row"),
    "no_type_column.csv": (1, None, "the header row has no 'type' column"),
    "extra_cells.csv": (2, None, "more cells than the header row"),
    "unterminated_quote.csv": (2, None, "malformed CSV"),
    "text_amount.csv": (2, "amount", "'twelve' is not a decimal number"),
    "underscore_amount.csv": (2, "amount", "'1_000' is not a decimal number"),
    "arabic_digits.csv": (2, "amount", "is not a decimal number"),
    "nan_amount.csv": (2, "amount", "'NaN' is not a finite number"),
    "thirty_decimals.csv": (2, "amount", "has more decimals than GBP allows"),
    "feb30.csv": (2, "effective", "'2025-02-30' is not a valid date"),
    "escape_in_name.csv": (2, "name", "without control characters"),
    "newline_in_name.csv": (2, "name", "without control characters"),
    "unknown_column.csv": (2, "colour", "is not a field of payment_received"),
    "not_utf8.csv": (2, None, "is not UTF-8 text"),
    "nul_bytes.csv": (1, None, "the header row has no 'type' column"),
}

POLICY_CASES: dict[str, tuple[int | None, str | None, str]] = {
    "malformed.toml": (3, None, "malformed TOML"),
    "empty.toml": (None, None, "has no [policy] table"),
    "no_policy_table.toml": (None, None, "has no [policy] table"),
    "policy_is_a_path.toml": (1, "policy", "must be a table"),
    "unknown_term_include.toml": (7, "policy.include", "is not a policy term"),
    "end_before_start.toml": (5, "policy.end", "is before start"),
    "feb30_start.toml": (4, "policy.start", "'2025-02-30' is not a valid date"),
    "year_9999.toml": (4, "policy.start", "9999-01-01 is out of range"),
    "longer_than_ten_years.toml": (5, "policy.end", "longer than ten years"),
    "deductible_on_proportional.toml": (7, "policy.per_loss_deductible", "not a proportional one"),
    "excess_on_excess_of_loss.toml": (7, "policy.excess", "refused on an excess_of_loss policy"),
    "both_max_liabilities.toml": (8, "policy.max_liability_multiple", "not both"),
    "indemnity_above_100.toml": (7, "policy.indemnity_pct", "120 is out of range"),
    "float_indemnity.toml": (7, "policy.indemnity_pct", "90.0 is not a decimal string"),
    "rate_and_rates.toml": (8, "policy.premium.rate", "give exactly one of rate or rates"),
    "rates_without_default.toml": (8, "policy.premium.rates.default", "needs a default rate"),
    "rates_bad_country.toml": (8, "policy.premium.rates", "'G\\nB' is not default or an ISO 3166"),
    "minimum_pct_without_turnover.toml": (None, "policy.premium.estimated_turnover", "needs estimated_turnover"),
    "selected_risk_without_selection.toml": (7, "policy.structure", "needs selected_buyers"),
    "selected_buyer_with_nul.toml": (8, "policy.selected_buyers", "'B\\x00' is not a buyer id"),
    "thirty_decimals_excess.toml": (7, "policy.excess", "has more decimals than GBP allows"),
    "thirty_decimals_rate.toml": (8, "policy.premium.rate", "has more than 10 decimal places"),
    "text_days.toml": (7, "policy.notify_days", "'sixty' is not a whole number of days"),
    "huge_days.toml": (7, "policy.notify_days", "is out of range"),
    "lowercase_currency.toml": (3, "policy.currency", "'gbp' is not an ISO 4217 currency code"),
    "control_in_id.toml": (2, "policy.id", "contains control characters"),
    "bidi_in_insured.toml": (7, "policy.insured", "contains control characters"),
    "fee_zone_without_fee.toml": (9, "policy.fees.investigation.B", "zone B has no fee"),
    "top_up_without_months.toml": (None, "policy.top_up.months", "needs its number of months"),
    "premium_not_a_table.toml": (7, "policy.premium", "must be a table"),
    "deep_nesting.toml": (None, None, "nested too deeply"),
}

# append TYPE --field value: (arguments, field, words of the rule)
PAYMENT = ["payment_received", "--effective", "2025-02-01", "--buyer", "B1"]
BUYER = ["buyer_registered", "--effective", "2025-02-01", "--buyer", "B2", "--country", "GB"]
APPEND_CASES: list[tuple[list[str], str | None, str]] = [
    ([*PAYMENT, "--amount", "twelve"], "amount", "'twelve' is not a decimal number"),
    ([*PAYMENT, "--amount", "1.000000000000000000000000000001"], "amount", "has more decimals"),
    ([*PAYMENT, "--amount", ""], "amount", "is required"),
    ([*PAYMENT, "--amount", "1e999999"], "amount", "is not a decimal number"),
    ([*PAYMENT, "--amount", "99999999999999999999"], "amount", "above the largest amount"),
    ([*PAYMENT, "--amount", "-0.01"], "amount", "is negative"),
    ([*PAYMENT, "--amount", "1_000"], "amount", "is not a decimal number"),
    ([*PAYMENT, "--amount", "١٢"], "amount", "is not a decimal number"),
    ([*PAYMENT, "--amount", "Infinity"], "amount", "is not a finite number"),
    (["payment_received", "--effective", "2025-02-30", "--buyer", "B1", "--amount", "1"], "effective",
     "'2025-02-30' is not a valid date"),
    (["payment_received", "--effective", "0001-01-01", "--buyer", "B1", "--amount", "1"], "effective",
     "out of range"),
    (["invoice_paid", "--effective", "2025-02-01"], "type", "'invoice_paid' is not an event type"),
    ([*BUYER, "--name", "Acme\x1b[2J"], "name", "without control characters"),
    ([*BUYER, "--name", "Acme\u202e Ltd"], "name", "without control characters"),
    ([*BUYER, "--name", "Acme\nLtd"], "name", "without control characters"),
    ([*BUYER, "--name", "A" * 201], "name", "length <= 200"),
    ([*PAYMENT, "--amount", "1", "--colour", "red"], "colour", "is not a field of payment_received"),
    ([*PAYMENT, "--amount", "1", "--recorded", "yesterday"], "recorded", "is not a timestamp"),
    ([*PAYMENT, "--amount", "1", "--key", "K\u2028K"], "key", "without control characters"),
    (["turnover_declared", "--effective", "2025-02-01", "--period", "9999-Q4", "--country", "GB", "--amount", "1"],
     "period", "a declaration period"),
    (["policy_amended", "--effective", "2025-02-01", "--terms", "/etc/passwd"], "policy", "must be a table"),
    ([*PAYMENT, "stray"], "append", "expected --field value"),
]

# The query options: (arguments, field, words of the rule)
QUERY_CASES: list[tuple[list[str], str | None, str]] = [
    (["turnover", "--period", "9999-Q4"], "period", "is not a period"),
    (["turnover", "--period", "0000"], "period", "is not a period"),
    (["declare", "--period", "2025-Q5"], "period", "is not a period"),
    (["exposure", "--as-of", "2025-02-30"], "as_of", "is not a date"),
    (["log", "--known-at", "'; DROP TABLE ledger_index; --"], "known_at", "is not a timestamp"),
    (["log", "--type", "invoice_paid"], "type", "is not an event type"),
    (["claim", "B1\x1b[2J", "--as-of", "2025-06-30"], "buyer", "is not a registered buyer"),
]


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One ledger file for the module: the SPEC 4 policy and buyer B1. Every case
    compares the event count before and after, so sharing it hides nothing."""
    path = str(tmp_path_factory.mktemp("hostile") / "ledger.db")
    with Ledger(path) as ledger:
        from ledger.adapters.policyfile import load_policy_file

        ledger.load_policy(load_policy_file(POLICY_FILE))
        ledger.append({"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme",
                       "country": "GB"})
    return path


def count(db: str) -> int:
    with Ledger(db) as ledger:
        return ledger.count()


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["creditledger", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def assert_one_line_refusal(code: int, err: str, source: str | None, line: int | None, field: str | None,
                            words: str) -> None:
    """Exit 1; exactly one line on stderr, `error: FILE[:LINE]: [FIELD: ]RULE`."""
    assert code == 1, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1 and len(err.splitlines()) == 1, repr(err)
    assert err.startswith("error: "), err
    if source is not None:
        where = f"{source}:{line}: " if line else f"{source}: "
        assert err.startswith(f"error: {where}"), err
    if field is not None:
        assert f" {field}: " in err, err
    assert words in err, err


# ---------------------------------------------------------------- the corpus is what the tables say

def test_every_corpus_file_has_its_expected_refusal():
    assert sorted(p.name for p in (HOSTILE / "import").iterdir()) == sorted(IMPORT_CASES)
    assert sorted(p.name for p in (HOSTILE / "policy").iterdir()) == sorted(POLICY_CASES)


# ---------------------------------------------------------------- import

@pytest.mark.parametrize("name", sorted(IMPORT_CASES))
def test_import_refuses_each_hostile_file(
    name: str, ledger_file: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    line, field, words = IMPORT_CASES[name]
    path = HOSTILE / "import" / name
    before = count(ledger_file)
    code, out, err = run_main(monkeypatch, capsys, "import", str(path), "--db", ledger_file)
    assert_one_line_refusal(code, err, str(path), line, field, words)
    assert out == ""
    assert count(ledger_file) == before


# ---------------------------------------------------------------- policy load

@pytest.mark.parametrize("name", sorted(POLICY_CASES))
@pytest.mark.parametrize("loaded", [False, True], ids=["first-policy", "amendment"])
def test_policy_load_refuses_each_hostile_file(
    name: str, loaded: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """On an empty ledger (it would be the first policy) and on one with a policy (an amendment)."""
    line, field, words = POLICY_CASES[name]
    db = str(tmp_path / "ledger.db")
    with Ledger(db) as ledger:
        if loaded:
            from ledger.adapters.policyfile import load_policy_file

            ledger.load_policy(load_policy_file(POLICY_FILE))
    before = count(db)
    path = HOSTILE / "policy" / name
    code, _, err = run_main(monkeypatch, capsys, "policy", "load", str(path), "--db", db)
    assert_one_line_refusal(code, err, str(path), line, field, words)
    assert count(db) == before


# ---------------------------------------------------------------- append and the query options

@pytest.mark.parametrize(("args", "field", "words"), APPEND_CASES, ids=lambda v: repr(v)[:60] if isinstance(v, list) else None)
def test_append_refuses_each_hostile_value(
    args: list[str], field: str | None, words: str, ledger_file: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
):
    before = count(ledger_file)
    code, out, err = run_main(monkeypatch, capsys, "append", *args, "--db", ledger_file)
    assert_one_line_refusal(code, err, None, None, field, words)
    assert out == ""
    assert count(ledger_file) == before


@pytest.mark.parametrize(("args", "field", "words"), QUERY_CASES, ids=lambda v: repr(v)[:60] if isinstance(v, list) else None)
def test_query_options_refuse_each_hostile_value(
    args: list[str], field: str | None, words: str, ledger_file: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
):
    before = count(ledger_file)
    code, _, err = run_main(monkeypatch, capsys, *args, "--db", ledger_file)
    assert_one_line_refusal(code, err, None, None, field, words)
    assert count(ledger_file) == before


# ---------------------------------------------------------------- scenario run

SCENARIO_POLICY = '\n[policy]\nid = "S-1"\ncurrency = "GBP"\nstart = 2025-01-01\nend = 2025-12-31\ncover = "proportional"\n'
# An empty scenario with a policy is a valid scenario of no checks; the others carry their own policy or are not text.
NOT_SCENARIO_CASES = {"empty.toml", "contradictory_policy.toml", "utf16.toml"}


def scenario_cases() -> Iterator[tuple[str, str]]:
    for name in sorted(IMPORT_CASES):
        if name.endswith(".toml") and name not in NOT_SCENARIO_CASES:
            yield "import", name
    for name in sorted(POLICY_CASES):
        yield "policy", name


@pytest.mark.parametrize(("folder", "name"), list(scenario_cases()), ids=lambda v: v)
def test_scenario_run_refuses_each_hostile_file(
    folder: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """An event file gets a valid [policy] after its events (the lines stay the same);
    a policy file runs as it is. Exit 1, the failure names file, line and field."""
    line, field, words = (IMPORT_CASES if folder == "import" else POLICY_CASES)[name]
    text = (HOSTILE / folder / name).read_text(encoding="utf-8")
    path = tmp_path / name
    path.write_text(text + SCENARIO_POLICY if folder == "import" else text, encoding="utf-8")
    code, out, err = run_main(monkeypatch, capsys, "scenario", "run", str(path))
    assert code == 1
    assert "Traceback" not in out + err
    failures = [row for row in out.splitlines() if row.startswith(str(path))]
    assert len(failures) == 1 and out.splitlines()[-1] == "0 passed, 1 failed", out
    if line:
        assert failures[0].startswith(f"{path}:{line}: "), failures[0]
    if field:
        assert f" {field}: " in failures[0], failures[0]
    assert words.replace("has no [policy]", "") in failures[0], failures[0]


# ---------------------------------------------------------------- over-long lines

def write_long_line(path: Path, characters: int, *, fmt: str) -> None:
    """A file whose second line is one event with a name of `characters` characters, written in chunks."""
    head = {"jsonl": '{"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "A", "country": "GB"}\n'
                     '{"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B9", "country": "GB", "name": "',
            "csv": 'type,effective,buyer,country,name\nbuyer_registered,2025-01-02,B9,GB,"',
            "toml": '[[events]]\nname = "'}[fmt]
    tail = {"jsonl": '"}\n', "csv": '"\n', "toml": '"\n'}[fmt]
    with path.open("w", encoding="utf-8") as file:
        file.write(head)
        chunk = "é" * 1_000_000  # two bytes each: the limit is in characters, not bytes
        for _ in range(characters // len(chunk)):
            file.write(chunk)
        file.write("é" * (characters % len(chunk)) + tail)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "toml"])
def test_a_line_over_the_limit_is_refused_with_its_line(
    fmt: str, tmp_path: Path, ledger_file: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / f"long.{fmt}"
    write_long_line(path, MAX_LINE_CHARS + 1, fmt=fmt)
    before = count(ledger_file)
    code, _, err = run_main(monkeypatch, capsys, "import", str(path), "--db", ledger_file)
    assert_one_line_refusal(code, err, str(path), 2, None, "the line is too long")
    assert count(ledger_file) == before


def test_a_line_of_multibyte_characters_just_under_the_limit_is_not_refused_as_long(tmp_path: Path):
    """1,000,000 characters are 2,000,000 bytes here: the limit counts characters."""
    from ledger.adapters.eventfiles import read_event_file

    path = tmp_path / "wide.jsonl"
    write_long_line(path, MAX_LINE_CHARS - 200, fmt="jsonl")
    assert len(read_event_file(path).events) == 2


@pytest.mark.parametrize("command", [["policy", "load"], ["scenario", "run"]])
def test_a_long_line_in_a_policy_or_scenario_is_refused(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "long.toml"
    path.write_text('[policy]\nid = "' + "P" * (MAX_LINE_CHARS + 1) + '"\n', encoding="utf-8")
    code, out, err = run_main(monkeypatch, capsys, *command, str(path), *(["--db", "x.db"] if command[0] == "policy" else []))
    assert code == 1 and "Traceback" not in out + err
    refusal = (out if command[0] == "scenario" else err).splitlines()[0]
    assert refusal.startswith((f"{path}:2: ", f"error: {path}:2: ")) and "the line is too long" in refusal, refusal


def test_a_100_mb_line_is_refused_without_loading_it(tmp_path: Path, ledger_file: str):
    """A real process: the refusal names file and line, and the process never
    holds the line (its peak memory stays well below the file's 100 MB)."""
    path = tmp_path / "huge.jsonl"
    write_long_line(path, 50_000_000, fmt="jsonl")  # 50 million two-byte characters: 100 MB
    assert path.stat().st_size > 100_000_000
    peak_file = tmp_path / "peak"
    probe = (
        "import sys\n"
        "from ledger.cli import main\n"
        f"sys.argv = ['creditledger', 'import', {str(path)!r}, '--db', {ledger_file!r}]\n"
        "try:\n    main()\nfinally:\n"
        # VmHWM is this process's own peak: ru_maxrss keeps the forking parent's (pytest's) across exec
        "    peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        f"    open({str(peak_file)!r}, 'w').write(peak)\n"
    )
    before = count(ledger_file)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr == f"error: {path}:2: the line is too long: an event line may have at most 1,000,000 characters\n"
    path.unlink()  # pytest keeps recent tmp folders; no need to keep 100 MB in them
    peak_mb = int(peak_file.read_text()) / 1024  # VmHWM is in KiB
    assert peak_mb < 90, f"peak memory {peak_mb:.0f} MB: the 100 MB line was loaded"
    assert count(ledger_file) == before


# ---------------------------------------------------------------- real subprocesses, a representative subset

def creditledger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={"PATH": str(SCRIPT.parent), "HOME": str(cwd)})


SUBPROCESS_CASES = [
    ("import", "malformed.toml"), ("import", "deep_nesting.toml"), ("import", "huge_integer.toml"),
    ("import", "newline_field_name.jsonl"), ("import", "deep_nesting.jsonl"), ("import", "feb30.json"),
    ("import", "escape_in_name.csv"), ("import", "thirty_decimals.csv"), ("import", "not_utf8.csv"),
    ("policy", "rate_and_rates.toml"), ("policy", "year_9999.toml"), ("policy", "deep_nesting.toml"),
]


@pytest.mark.parametrize(("folder", "name"), SUBPROCESS_CASES, ids=lambda v: v)
def test_the_installed_script_refuses_hostile_files(folder: str, name: str, ledger_file: str, tmp_path: Path):
    line, field, words = (IMPORT_CASES if folder == "import" else POLICY_CASES)[name]
    path = HOSTILE / folder / name
    command = ["import"] if folder == "import" else ["policy", "load"]
    before = count(ledger_file)
    done = creditledger(*command, str(path), "--db", ledger_file, cwd=tmp_path)
    assert_one_line_refusal(done.returncode, done.stderr, str(path), line, field, words)
    assert count(ledger_file) == before


def test_the_installed_script_refuses_hostile_appends_and_scenarios(ledger_file: str, tmp_path: Path):
    before = count(ledger_file)
    for args, field, words in APPEND_CASES[:3] + APPEND_CASES[12:15] + APPEND_CASES[19:20]:
        done = creditledger("append", *args, "--db", ledger_file, cwd=tmp_path)
        assert_one_line_refusal(done.returncode, done.stderr, None, None, field, words)
    for args, field, words in QUERY_CASES[:2]:
        done = creditledger(*args, "--db", ledger_file, cwd=tmp_path)
        assert_one_line_refusal(done.returncode, done.stderr, None, None, field, words)
    scenario = tmp_path / "bidi.toml"
    scenario.write_text((HOSTILE / "import" / "bidi_in_buyer.toml").read_text() + SCENARIO_POLICY, encoding="utf-8")
    done = creditledger("scenario", "run", str(scenario), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"{scenario}:2: bidi: event refused: buyer: expected text without control characters or line breaks",
        "0 passed, 1 failed",
    ]
    assert count(ledger_file) == before
    assert json.loads(creditledger("log", "--json", "--db", ledger_file, cwd=tmp_path).stdout)[-1]["buyer"] == "B1"


# ---------------------------------------------------------------- values that parse, exactly

def test_a_foreign_invoice_with_a_31_digit_rate_is_converted_exactly_then_rounded_once():
    """1.00 USD at 1.004999...9 is 100.4999...9 pence: 100, not 101 (the 28-digit
    default context used to round to 100.5 first, then half-up)."""
    from ledger.vocabulary.events import parse_event

    event = parse_event({"type": "invoice_issued", "effective": "2025-01-02", "buyer": "B1", "invoice": "I9",
                         "amount": "1.00", "due": "2025-02-01", "currency": "USD",
                         "fx_rate": "1.004999999999999999999999999999"}, "GBP")
    assert (event.amount, event.foreign_amount) == (100, 100)  # type: ignore[attr-defined]
