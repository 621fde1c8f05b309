"""Build hook: compiles the Rust core with setuptools-rust and puts libgnaming.so into the package, so
`pip install` needs nothing built first. The crate is two directories up in the checkout; an sdist
carries a copy of it in rust/ (sdist below), since an sdist cannot hold files outside its directory."""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, build_rust

HERE = Path(__file__).resolve().parent
VENDORED = HERE / "rust"
CRATE = VENDORED if (VENDORED / "Cargo.toml").is_file() else HERE.parent.parent
# What `cargo build --lib` reads: the manifest, the lock file, the build script and the sources.
CRATE_FILES = ["Cargo.toml", "Cargo.lock", "build.rs", "src", "include"]
LIBRARY = "libgnaming.so"


class SdistWithCrate(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        for name in CRATE_FILES:
            src, dst = CRATE / name, Path(base_dir) / "rust" / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)


class BuildRustLibrary(build_rust):
    """The package loads the library by this name (gnaming/_ffi.py), not by a Python extension's name:
    it is a plain C library that ctypes opens by path."""

    def get_dylib_ext_path(self, ext, target_fname):
        return os.path.join(os.path.dirname(super().get_dylib_ext_path(ext, target_fname)), LIBRARY)


class PlatformWheel(bdist_wheel):
    """The library does not use Python's C API: one wheel per platform serves every Python 3."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    rust_extensions=[
        RustExtension(
            "gnaming.libgnaming",
            path=str(CRATE / "Cargo.toml"),
            binding=Binding.NoBinding,
            # The release profile `make lib` builds, with the crate's own crate types: cargo then finds
            # the library `make lib` built up to date in the same target directory instead of relinking.
            debug=False,
            args=["--crate-type", "cdylib,staticlib,rlib"],
            cargo_manifest_args=["--locked"],
        )
    ],
    cmdclass={"sdist": SdistWithCrate, "build_rust": BuildRustLibrary, "bdist_wheel": PlatformWheel},
)
