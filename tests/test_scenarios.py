"""Scenario files as tests, through the library and the CLI.

Every file under scenarios/ (and the fixed examples under tests/data/scenarios)
is run and must pass whole: any failure fails the test (a query dropped from the
registry too). New scenario files are picked up by the glob.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.adapters.scenario import run_scenario, scenario_files
from ledger.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "data" / "scenarios"
SCENARIOS = sorted((ROOT / "scenarios").rglob("*.toml")) + sorted(EXAMPLES.glob("*.toml"))
CLOSING = re.compile(r"^(\d+) passed, (\d+) failed$")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scenario_passes(path: Path):
    result = run_scenario(path)
    assert result.failures == (), "\n".join(result.failures)
    assert result.passed > 0, "a scenario must check something"


def test_the_examples_are_found():
    assert EXAMPLES / "spec10_excess_of_loss.toml" in SCENARIOS
    assert scenario_files([EXAMPLES]) == sorted(EXAMPLES.rglob("*.toml"))


def test_the_spec10_example_checks_its_refusal_and_its_claim():
    result = run_scenario(EXAMPLES / "spec10_excess_of_loss.toml")
    assert result.title == "Excess of loss with a per-loss deductible"
    assert result.failures == ()
    assert result.passed == 2


POLICY = """\
    title = "{title}"

    [policy]
    id = "T-1"
    currency = "GBP"
    start = 2025-01-01
    end = 2025-12-31
    cover = "proportional"

    [[events]]
    type = "buyer_registered"
    effective = 2025-01-02
    buyer = "B1"
    name = "Acme Ltd"
    country = "GB"

    [[events]]
    type = "invoice_issued"
    effective = 2025-01-10
    buyer = "B1"
    invoice = "I1"
    amount = "100.00"
    due = 2025-03-10
"""


def scenario(tmp_path: Path, name: str, title: str, events: str) -> Path:
    """Write a scenario file."""
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(POLICY.format(title=title)) + textwrap.dedent(events))
    return path


PASSING = """
[[events]]
type = "payment_received"
effective = 2025-02-01
buyer = "B1"
invoice = "I1"
amount = "100.01"
refused = "is more than the 100.00 open on invoice I1"

[[events]]
type = "payment_received"
effective = 2025-02-02
buyer = "B1"
invoice = "I9"
amount = "1.00"
refused = "no invoice I9"

[[events]]
type = "payment_received"
effective = 2025-02-03
buyer = "B1"
amount = "1.001"
refused = "more decimals"
"""

FAILING = """
[[events]]
type = "payment_received"
effective = 2025-02-01
buyer = "B1"
invoice = "I1"
amount = "100.00"
refused = "is more than"

[[events]]
type = "payment_received"
effective = 2025-02-02
buyer = "B1"
invoice = "I9"
amount = "1.00"
refused = "a message the ledger never gives"

[[events]]
type = "credit_note_issued"
effective = 2025-02-03
buyer = "B1"
invoice = "I1"
amount = "5.00"
"""


def test_refused_extension_passes_through_the_library(tmp_path: Path):
    result = run_scenario(scenario(tmp_path, "passing", "Refusals pass", PASSING))
    assert (result.passed, result.failures) == (3, ())


def test_refused_extension_fails_through_the_library(tmp_path: Path):
    path = scenario(tmp_path, "failing", "Refusals fail", FAILING)
    result = run_scenario(path)
    assert result.passed == 0
    assert len(result.failures) == 3
    recorded, wrong_message, refused = result.failures
    headers = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == "[[events]]"]
    assert recorded.startswith(f"{path}:{headers[2]}: Refusals fail: ") and "but it was recorded" in recorded
    assert wrong_message.startswith(f"{path}:{headers[3]}: ") and refused.startswith(f"{path}:{headers[4]}: ")
    assert "a message the ledger never gives" in wrong_message and "no invoice I9" in wrong_message
    # The payment was recorded, so the credit note finds nothing open and is refused unexpectedly.
    assert "event refused" in refused and "is more than the 0.00 open" in refused


def cli_run(*paths: Path):
    return CliRunner().invoke(app, ["scenario", "run", *map(str, paths)])


def closing(output: str) -> tuple[int, int]:
    last = output.strip().splitlines()[-1]
    match = CLOSING.match(last)
    assert match, f"closing line is {last!r}"
    return int(match.group(1)), int(match.group(2))


def test_scenario_run_cli_passing(tmp_path: Path):
    result = cli_run(scenario(tmp_path, "passing", "Refusals pass", PASSING))
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip().splitlines() == ["3 passed, 0 failed"]


def test_scenario_run_cli_failing(tmp_path: Path):
    failing = scenario(tmp_path, "failing", "Refusals fail", FAILING)
    result = cli_run(failing, scenario(tmp_path, "passing", "Refusals pass", PASSING))
    assert result.exit_code == 1
    assert closing(result.stdout) == (3, 3)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"{failing}:") for line in lines[:3])


def test_scenario_run_cli_over_a_folder(tmp_path: Path):
    scenario(tmp_path, "a", "A", PASSING)
    (tmp_path / "sub").mkdir()
    scenario(tmp_path / "sub", "b", "B", PASSING)
    result = cli_run(tmp_path)
    assert result.exit_code == 0 and closing(result.stdout) == (6, 0)


def test_scenario_run_cli_reports_a_broken_file_as_a_failure(tmp_path: Path):
    broken = tmp_path / "broken.toml"
    broken.write_text("title = 'x'\n[[events]\n")
    result = cli_run(broken)
    assert result.exit_code == 1
    assert closing(result.stdout) == (0, 1)
    assert "malformed TOML" in result.stdout


def test_scenario_run_cli_over_the_project_scenarios():
    if not (ROOT / "scenarios").is_dir():
        pytest.fail("the project has no scenarios/ folder")
    result = cli_run(ROOT / "scenarios", EXAMPLES)
    passed, failed = closing(result.stdout)
    assert (failed, result.exit_code) == (0, 0), result.stdout
    assert result.stdout.strip().splitlines() == [f"{passed} passed, 0 failed"]
    assert passed > 0


def test_toml_lines_name_the_header_even_after_blank_lines(tmp_path: Path):
    path = tmp_path / "spaced.toml"
    path.write_text(textwrap.dedent(POLICY.format(title="Spaced")) + textwrap.dedent(FAILING))
    headers = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == "[[events]]"]
    first = run_scenario(path).failures[0]
    assert first.startswith(f"{path}:{headers[2]}: "), (first, headers)


def test_a_query_not_in_the_registry_fails_its_scenario(tmp_path: Path):
    path = scenario(tmp_path, "unknown", "Unknown query", '\n[[expect]]\nquery = "forecast"\nas_of = 2025-03-31\n')
    result = run_scenario(path)
    assert result.passed == 0 and len(result.failures) == 1
    assert "'forecast' is not a query (one of summary, exposure, exposure_diff, " in result.failures[0]


def test_an_expectation_may_give_any_argument_of_its_query(tmp_path: Path):
    """The arguments are the query's own (its typed arguments), so `open`, `due_within`, `lines`
    and `explain` can be given too; the other keys are the values expected."""
    path = scenario(tmp_path, "arguments", "Arguments", """
        [[expect]]
        query = "obligations"
        as_of = 2025-12-31
        open = true
        obligations = [{ kind = "report_overdue", buyer = "B1", due = "2025-05-09", status = "missed" }]

        [[expect]]
        query = "obligations"
        as_of = 2025-04-01
        due_within = 30
        open = true
        obligations = []

        [[expect]]
        query = "claim"
        buyer = "B1"
        as_of = 2025-12-31
        explain = true
        filing_due = ""
        """)
    result = run_scenario(path)
    assert result.failures == () and result.passed == 3
