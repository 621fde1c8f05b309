"""Build hook: copies libgnaming.so into the package, so an installed copy finds the library next
to itself. The library comes from $GNAMING_LIBRARY, else from the repository's target/release
(`make` builds it). Editable installs skip the copy: they find target/release at run time."""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def _library() -> Path:
    env = os.environ.get("GNAMING_LIBRARY")
    if env:
        return Path(env)
    return HERE.parent.parent / "target" / "release" / "libgnaming.so"


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        lib = _library()
        if not lib.is_file():
            raise SystemExit(f"{lib} not found: run `make` at the repository root first, or set GNAMING_LIBRARY")
        shutil.copy2(lib, Path(self.build_lib) / "gnaming" / "libgnaming.so")


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it must be tagged for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution)
