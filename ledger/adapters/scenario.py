"""The scenario runner: fold a TOML scenario on an in-memory ledger and check every
expectation against the answer of its query (from the one registry), compared as text.

For the ledger's refusal rules, an event may carry `refused = "text"`; the check
passes when the ledger refuses that event with a message containing the text
(and nothing is recorded).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ledger.adapters.eventfiles import EventFile, read_text, read_toml, term_line
from ledger.queries import answers
from ledger.queries.registry import QUERIES, run_query
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.events import UNRECORDED, Event, parse_event
from ledger.vocabulary.terms import parse_policy
from ledger.write.pipeline import Draft

NEEDS_AS_OF = ("exposure", "exposure_diff", "claim", "claims", "premium")
END_OF_DAY = datetime.time(23, 59, 59, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class _Step:
    """One [[events]] entry, in the order the ledger learns it: its recorded stamp, then its place
    in the file; the event, or why it could not be read; and the refusal it expects, if any."""

    recorded: datetime.datetime
    order: int
    line: int
    event: Event | None
    refused: str | None
    parse_problem: LedgerError | None


@dataclass
class _Tally:
    """How one scenario file fares while it runs: checks passed, and one line per failure."""

    path: str
    title: str
    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, line: int | None, message: str) -> None:
        where = f"{self.path}:{line}" if line else self.path
        self.failures.append(f"{where}: {self.title}: {message}")

    def result(self) -> answers.ScenarioResult:
        return answers.ScenarioResult(path=self.path, title=self.title, passed=self.passed,
                                      failures=tuple(self.failures))


def unreadable(path: Path, problem: LedgerError) -> answers.ScenarioResult:
    """The result of a scenario file that could not be read: its one failure."""
    tally = _Tally(str(path), path.stem)
    if problem.source == str(path):  # name the file and line once, in front, like every failure
        tally.fail(problem.line, str(LedgerError(problem.message, field=problem.field)))
    else:
        tally.fail(None, str(problem))
    return tally.result()


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """The .toml files named, and those under the folders named, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.toml")))
        elif path.exists():
            found.append(path)
        else:
            raise LedgerError("no such file or folder", source=str(path))
    return found


def run_scenario(path: Path) -> answers.ScenarioResult:
    """Fold one scenario and check its expectations."""
    text = read_text(path)
    document = read_toml(text, str(path))
    result = _Tally(str(path), document.title or path.stem)
    try:
        _run(path, text, document, result)
    except LedgerError as problem:
        result.fail(problem.line, f"the scenario stopped: {LedgerError(problem.message, field=problem.field)}")
    except Exception as problem:  # a bug met by one file is that file's failure; the others still run
        result.fail(None, f"the scenario stopped: internal error {type(problem).__name__}: {problem}")
    return result.result()


def _run(path: Path, text: str, document: EventFile, result: _Tally) -> None:
    """Record the scenario's policy and events on an in-memory ledger, then check each expectation."""
    if document.policy is None:
        result.fail(None, "the scenario has no [policy] table")
        return
    try:
        terms = parse_policy(document.policy)
    except LedgerError as problem:
        result.fail(term_line(text, problem.field) if problem.field else None, f"policy refused: {problem}")
        return
    steps: list[_Step] = []
    for order, (line, raw) in enumerate(document.events):
        if not isinstance(raw, dict):
            result.fail(line, "each [[events]] entry must be a table")
            continue
        raw = dict(raw)
        refused = raw.pop("refused", None)
        try:
            event = parse_event(raw, terms.currency)
        except LedgerError as problem:
            steps.append(_Step(_default_recorded(raw), order, line, None, refused, problem))
            continue
        recorded = event.recorded
        if recorded == UNRECORDED:
            recorded = datetime.datetime.combine(event.effective, END_OF_DAY)
            event = _restamp(event, recorded)
        steps.append(_Step(recorded, order, line, event, refused, None))
    steps.sort(key=lambda step: (step.recorded, step.order))  # recorded order, file order breaking ties
    stamped = [Draft(step.event) for step in steps if step.event is not None]
    with Ledger("memory") as ledger:
        ledger.record([Ledger.starting_draft(terms, stamped)], keep_recorded=bool(stamped))
        for step in steps:
            _apply(ledger, result, step, str(path))
        for line, expectation in document.expectations:
            if not isinstance(expectation, dict):
                result.fail(line, "each [[expect]] entry must be a table")
                continue
            _check(ledger, result, line, dict(expectation))


def _default_recorded(raw: Mapping[str, Any]) -> datetime.datetime:
    effective = raw.get("effective")
    if isinstance(effective, datetime.date) and not isinstance(effective, datetime.datetime):
        return datetime.datetime.combine(effective, END_OF_DAY)
    return datetime.datetime.max.replace(tzinfo=datetime.UTC)


def _restamp(event: Any, recorded: datetime.datetime) -> Any:
    return msgspec.structs.replace(event, recorded=recorded)


def _apply(ledger: Ledger, result: _Tally, step: _Step, source: str) -> None:
    """Record one event, and check it was refused when the scenario says so."""
    line, event, refused, problem = step.line, step.event, step.refused, step.parse_problem
    if event is not None:
        before = ledger.count()
        try:
            ledger.record([Draft(event, source, line)], keep_recorded=True)
        except LedgerError as refusal:
            problem = refusal
            if ledger.count() != before:
                result.fail(line, "a refused event left something recorded")
                return
    if refused is None:
        if problem is None:
            return
        result.fail(line, f"event refused: {problem}")
        return
    if problem is None:
        result.fail(line, f"expected the event to be refused ({refused!r}), but it was recorded")
    elif str(refused) not in str(problem):
        result.fail(line, f"refused: expected a message containing {refused!r}, got {str(problem)!r}")
    else:
        result.passed += 1


def _check(ledger: Ledger, result: _Tally, line: int, expectation: dict[str, Any]) -> None:
    query = str(expectation.pop("query", ""))
    names = msgspec.structs.fields(QUERIES[query].arguments) if query in QUERIES else ()
    arguments = {f.name: expectation.pop(f.name) for f in names if f.name in expectation}  # the rest: expected
    if query in NEEDS_AS_OF and "as_of" not in arguments:
        result.fail(line, f"{query}: as_of is required in a scenario")
        return
    try:
        answer = msgspec.to_builtins(run_query(query, ledger, arguments))  # absent fields left out
    except LedgerError as problem:
        result.fail(line, f"{query or '(no query)'}: {problem}")
        return
    wrong = [
        f"{name}: expected {_text(expected)!r}, got {_text(answer.get(name))!r}"
        for name, expected in expectation.items()
        if not _matches(_text(expected), _text(answer.get(name)))
    ]
    if wrong:
        result.fail(line, f"{query}: " + "; ".join(wrong))
    else:
        result.passed += 1


def _matches(expected: Any, got: Any) -> bool:
    """Equal as text; a table expectation checks only the keys it names
    (e.g. `excluded = { prepaid = "500.00" }`)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return all(key in got and _matches(value, got[key]) for key, value in expected.items())
    return bool(expected == got)


def _text(value: Any) -> Any:
    """Values compared exactly, as text."""
    if isinstance(value, Mapping):
        return {str(k): _text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return None if value is None else str(value)
