"""make install puts the Python package where Debian's /usr/bin/python3 finds it."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import BUILD, PYTHON, ROOT


@pytest.mark.parametrize("prefix", ["/usr", "/usr/local"])
def test_make_install_puts_pgwake_on_the_system_path(tmp_path, prefix):
    subprocess.run(["make", "-s", "install", f"DESTDIR={tmp_path}", f"PREFIX={prefix}",
                    f"BUILD={BUILD}"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    inits = list(tmp_path.rglob("pgwake/__init__.py"))
    assert len(inits) == 1
    site = str(inits[0].parent.parent)[len(str(tmp_path)):]
    path = subprocess.run([PYTHON, "-I", "-c", "import sys; print('\\n'.join(sys.path))"],
                          check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    assert site in path, f"{site} is not on /usr/bin/python3's path"
    # the installed copy imports on its own (isolated mode: no PYTHONPATH, no checkout)
    out = subprocess.run([PYTHON, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path) + site!r}); "
                          "import pgwake; print(pgwake.__file__, pgwake.run, pgwake.Session)"],
                         check=True, stdout=subprocess.PIPE, text=True, cwd="/").stdout
    assert out.startswith(str(tmp_path))
    assert os.path.exists(inits[0].parent / "py.typed")
