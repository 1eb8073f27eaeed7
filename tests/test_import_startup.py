"""Commands start fast: the heavy libraries are imported only by the commands that use them
(docs/performance.md, "Start-up"). Checked in a fresh interpreter, whose sys.modules is
what `creditledger --help` pays for."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "numpy", "PIL", "psycopg", "psycopg_pool")


def modules_after(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("statement", ["import ledger.cli", "import ledger.cli.chart", "import ledger.service"])
def test_the_command_line_does_not_import_the_heavy_libraries(statement: str) -> None:
    loaded = modules_after(statement)
    assert "ledger.cli.common" in loaded or statement == "import ledger.service"
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}


def test_a_chart_imports_matplotlib_when_drawn() -> None:
    """The guard above guards something: the chart adapter does load it."""
    assert "matplotlib" in modules_after("import ledger.adapters.charts\nledger.adapters.charts._figure(2, 2)")
