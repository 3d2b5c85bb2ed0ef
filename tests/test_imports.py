"""highspy 1.15.x and ortools 9.15 cannot live in one process (undefined symbol); we pin highspy>=1.16."""

import subprocess
import sys


def test_highspy_and_ortools_import_together():
    code = (
        "import highspy, ortools\n"
        "from ortools.sat.python import cp_model\n"
        "import pyomo.environ as pyo\n"
        "h = highspy.Highs()\n"
        "m = cp_model.CpModel(); x = m.NewIntVar(0, 3, 'x'); m.Minimize(x)\n"
        "s = cp_model.CpSolver(); assert s.Solve(m) == cp_model.OPTIMAL\n"
        "assert pyo.SolverFactory('highs').available()\n"
        "print(highspy.__version__ if hasattr(highspy, '__version__') else 'ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # the other import order too
    code2 = "from ortools.sat.python import cp_model\nimport highspy\nhighspy.Highs()\n"
    out2 = subprocess.run(
        [sys.executable, "-c", code2], capture_output=True, text=True, timeout=120
    )
    assert out2.returncode == 0, out2.stderr
