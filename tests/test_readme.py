"""The README's tour, run on the demo book, so the text cannot drift from the product.

The book is built as `make demo` builds it (the recipe's `sample generate`, `init` and
`import`, read from the Makefile). The tour's commands are read from the README's
fenced `sh` blocks and run in process: `creditledger ...` through the CLI app,
`sqlite3 FILE SQL` through Python's sqlite3, `$(date -u ...)` and `$NAME` substituted
as the shell would. The figures the README states, in its comments and in the
explanation of the late invoice, are then checked against what the commands answer.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
DATE_NOW = "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# `NAME=$(date -u ...); sleep 1`: a moment before what follows, a second apart from it.
STAMP_LINE = re.compile(r"^(\w+)=" + re.escape(DATE_NOW) + r"; sleep 1$")
DEMO_BOOK_STEPS = ("sample generate", "init", "import")


def section(title: str) -> str:
    """The README's text under the `## title` heading, up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:] if end < 0 else README[start:end]


def sh_lines(text: str) -> list[str]:
    """The command lines of the fenced `sh` blocks in `text`, continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line.strip())
    return lines


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Shell:
    """Runs the README's lines as a shell would, for the commands the tour uses."""

    env: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # by the line as written

    def run(self, line: str) -> None:
        stamp = STAMP_LINE.match(line)
        if stamp:
            self.names[stamp.group(1)] = utc_now()
            time.sleep(1)  # the append that follows is recorded in a later second
            return
        words = shlex.split(self.expand(line), comments=True)
        match words:
            case ["make", *_] | [".", *_]:
                return  # the fixture built the book as `make demo` does; the CLI runs in process
            case ["export", assignment]:
                name, _, value = assignment.partition("=")
                self.env[name] = value
            case ["creditledger", *args]:
                self.outputs[line] = creditledger(*args, env=self.env)
            case ["sqlite3", path, query]:
                with sqlite3.connect(path) as db:
                    rows = db.execute(query).fetchall()
                self.outputs[line] = "\n".join("|".join(str(cell) for cell in row) for row in rows)
            case _:
                pytest.fail(f"the README runs a command this test does not know: {line}")

    def expand(self, line: str) -> str:
        if DATE_NOW in line:
            # `date` cuts to the second; commands run in a shell take about that long, here
            # milliseconds, so wait for the next second to stay after what was just recorded.
            time.sleep(1 - time.time() % 1)
            line = line.replace(DATE_NOW, utc_now())
        return re.sub(r"\$(\w+)", lambda m: self.names[m.group(1)], line)

    def line(self, *words: str) -> str:
        """The one line run that holds every one of `words`."""
        found = [line for line in self.outputs if all(w in line for w in words)]
        assert len(found) == 1, (words, found)
        return found[0]

    def output(self, *words: str) -> str:
        return self.outputs[self.line(*words)]


def creditledger(*args: str, env: dict[str, str]) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return result.stdout


def demo_book_commands() -> list[list[str]]:
    """The recipe lines of `make demo` that build the book, as arguments of creditledger."""
    recipe = MAKEFILE.split("\ndemo:", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    commands = []
    for line in recipe.splitlines():
        if line.strip().startswith("$(BIN)/creditledger "):
            commands.append(shlex.split(line.strip().replace("$(DEMO)", "build/demo"))[1:])
    building = [c for c in commands if any(" ".join(c).startswith(step) for step in DEMO_BOOK_STEPS)]
    assert [next(s for s in DEMO_BOOK_STEPS if " ".join(c).startswith(s)) for c in building] == list(DEMO_BOOK_STEPS)
    return building


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    """The demo book in a fresh directory, and every command of the README's tour run on it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("readme"))
        patch.delenv("CREDITLEDGER_DB", raising=False)
        Path("build/demo").mkdir(parents=True)
        for command in demo_book_commands():
            creditledger(*command, env={})
        shell = Shell()
        for line in sh_lines(section("A ten-minute tour of the demo book")):
            shell.run(line)
        yield shell


def exposure_json(shell: Shell, line: str) -> dict[str, str]:
    """The README's exposure command `line`, run again with --json."""
    args = shlex.split(shell.expand(line), comments=True)[1:]
    answer = json.loads(creditledger(*args, "--json", env=shell.env))
    assert isinstance(answer, dict)
    return answer


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def shown(amount: Decimal) -> str:
    """An amount as the README's prose writes it: 10,789.47."""
    return f"{amount:,.2f}"


def test_the_demo_book_is_as_the_tour_describes(tour: Shell) -> None:
    summary = json.loads(creditledger("summary", "--json", env=tour.env))
    intro = " ".join(section("A ten-minute tour of the demo book").split())
    countries = summary["buyers_by_country"]
    assert "200 buyers in five countries" in intro
    assert (sum(countries.values()), len(countries)) == (200, 5)
    assert "about 8,000 events" in intro and 7500 <= summary["events"] <= 8500
    insolvencies = json.loads(creditledger("log", "--type", "insolvency", "--json", env=tour.env))
    assert [e["buyer"] for e in insolvencies] == ["B0029"]  # "one insolvency (buyer B0029) with its claim"
    assert "B0029" in intro
    claim = tour.output("claim B0029")
    assert "insolvency" in claim


def test_every_command_of_the_tour_ran(tour: Shell) -> None:
    commands = [line for line in sh_lines(section("A ten-minute tour of the demo book"))
                if line.startswith(("creditledger ", "sqlite3 "))]
    assert len(commands) == len(tour.outputs) == 22
    assert Path("build/demo/book.png").stat().st_size > 0 and Path("build/demo/largest.png").stat().st_size > 0
    assert tour.output("sqlite3", "reports.db").count("\n") == 4  # the five largest exposures


def test_the_stated_exposure_figures_hold(tour: Shell) -> None:
    """Each command whose comment states `outstanding X, insured Y` answers X and Y."""
    stated = [
        (line, match.groups())
        for line in tour.outputs
        if (match := re.search(r"# outstanding ([\d.]+), insured ([\d.]+)", line))
    ]
    assert [figures for _, figures in stated] == [("8099.24", "8099.24"), ("13099.24", "10684.32")]
    for line, (outstanding, insured) in stated:
        answer = exposure_json(tour, line)
        assert (answer["outstanding"], answer["insured"]) == (outstanding, insured), line


def test_the_largest_exposures_have_names_and_missed_duties_come_first(tour: Shell) -> None:
    largest = json.loads(creditledger("exposure", "--as-of", "2025-12-31", "--top", "5", "--json", env=tour.env))
    outstanding = [Decimal(row["outstanding"]) for row in largest["buyers"]]
    assert len(outstanding) == 5 and outstanding == sorted(outstanding, reverse=True) and largest["matched"] == 200
    table = tour.output("--top 5")
    assert all(row["buyer"] in table and row["name"].split()[0] in table for row in largest["buyers"])
    duties = json.loads(creditledger("obligations", "--as-of", "2025-12-31", "--open", "--json", env=tour.env))
    statuses = [duty["status"] for duty in duties]
    assert "missed" in statuses and statuses == sorted(statuses, key=lambda status: status != "missed")
    assert "monitoring_fee" in tour.output("--by kind") and "monitoring_fee" not in tour.output("--kind premium")


def test_a_buyer_on_stop_has_headroom_but_nothing_available(tour: Shell) -> None:
    """The tour's buyer on stop: the headroom and available its comment states, and why."""
    line = tour.line("exposure --buyer B0006", "# on stop: headroom 20122.40, available 0.00")
    answer = exposure_json(tour, line)
    assert (answer["status"], answer["headroom"], answer["available"], answer["not_available"]) == (
        "on_stop", "20122.40", "0.00", "on_stop")
    assert "on stop" in tour.output("exposure --buyer B0006")
    assert "20,122.40 of headroom" in " ".join(section("A ten-minute tour of the demo book").split())


def test_the_diff_names_the_late_invoice(tour: Shell) -> None:
    diff = tour.output("--diff")
    assert "1 buyers changed" in diff
    assert "insured: 8099.24 -> 10684.32" in diff
    assert "because: invoice_issued effective 2025-06-30" in diff and "key LATE-1" in diff


def test_the_late_invoice_is_explained_by_its_cap(tour: Shell) -> None:
    """The explanation's figures, each from the export of the tour and an export known before LATE-1."""
    rows = {row.split("|")[0]: row.split("|") for row in tour.output("sqlite3", "july.db").splitlines()}
    _, late_delivered, late_amount, late_cap, late_entry = rows["LATE-1"]
    _, pushed_delivered, pushed_amount, pushed_cap, pushed_entry = rows["NW25-001838"]
    assert (late_delivered, late_amount) == ("2025-06-30", "5000.00")
    assert (pushed_delivered, pushed_cap) == ("2025-07-02", "0.00")
    known_before = exposure_json(tour, tour.line("exposure --buyer B0012", "# outstanding 8099.24"))
    limit, before = money(known_before["limit"]), money(known_before["insured"])
    after = money(exposure_json(tour, tour.line("exposure --buyer B0012", "# outstanding 13099.24"))["insured"])
    assert money(late_entry) + money(late_cap) == limit == money(pushed_entry)
    # Before LATE-1 was known, NW25-001838 was insured in full.
    creditledger("export", "--sqlite", "build/demo/known-before.db", "--as-of", "2025-07-31",
                 "--known-at", tour.names["BEFORE"], env=tour.env)
    with sqlite3.connect("build/demo/known-before.db") as db:
        (cap_before,) = db.execute("SELECT cap FROM invoices WHERE invoice = 'NW25-001838'").fetchone()
    assert cap_before == pushed_amount
    assert after - before == money(late_cap) - money(pushed_amount)

    text = " ".join(section("A ten-minute tour of the demo book").split())
    explanation = text[text.index("The `--diff` names"):]
    for amount in (limit, money(late_entry), money(late_cap), money(late_amount), money(pushed_amount),
                   money(late_cap) - money(pushed_amount), before, after):
        assert shown(amount) in explanation, shown(amount)
    assert "LATE-1, delivered on 30 June" in explanation and "NW25-001838" in explanation


def test_the_tour_records_a_declaration(tour: Shell) -> None:
    """`declare --record` in the tour records Q3 by country, so its duty is met."""
    line = tour.line("declare --period 2025-Q3 --record")
    assert tour.outputs[line].startswith("policy,period,country,currency,insurable_turnover\n")
    declared = json.loads(creditledger("log", "--type", "turnover_declared", "--json", env=tour.env))
    assert {e["period"] for e in declared} == {"2025-Q3"} and len(declared) == 5  # one per country
    duties = json.loads(creditledger("obligations", "--as-of", "2025-12-31", "--json", env=tour.env))
    assert {"kind": "declare_turnover", "due": "2025-10-30", "status": "met"} in duties
