"""Loading the library: one older than the package (it lacks functions the package declares) is
refused at import with a clear error, not an AttributeError from deep inside ctypes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_a_library_lacking_functions_is_refused_at_import_naming_them(tmp_path):
    # A library of the right ABI version that has none of the package's other functions.
    source = tmp_path / "old.c"
    source.write_text("unsigned gn_abi_version(void) { return 1; }\n")
    library = tmp_path / "libgnaming.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    env = dict(os.environ, GNAMING_LIBRARY=str(library))
    run = subprocess.run(
        [sys.executable, "-c", "import gnaming"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert "LibraryNotFoundError" in run.stderr, run.stderr
    assert "is older than this gnaming package" in run.stderr and "gn_xds_install_bootstrap" in run.stderr, run.stderr
