"""Where the files of the ``vqlens`` distribution come from (the metadata is in pyproject.toml).

The repository keeps its own layout (``app.py``, ``pages/``, ``ui/``,
``vqcore/`` at the top; see DESIGN.md). The installed layout is::

    vqcore/            the library, every subpackage found automatically, with the shipped sample
    vqlens/            the command line (``vqlens app``, ``vqlens report``, ...)
    vqlens/app/        the Streamlit app: app.py, pages/, ui/, .streamlit/config.toml

so ``ui`` is never a top-level package of site-packages, and ``vqlens app``
runs ``streamlit run vqlens/app/app.py`` (Streamlit puts the script's folder,
and with it ``ui``, on the import path).
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """From the repository root, ship the app's home page (app.py) only, never setup.py or a stray script."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package == "vqlens.app":
            modules = [m for m in modules if m[1] == "app"]
        return modules


setup(
    cmdclass={"build_py": BuildPy},
    packages=find_packages(include=["vqcore", "vqcore.*"])
    + ["vqlens", "vqlens.app", "vqlens.app.pages", "vqlens.app.ui"],
    package_dir={
        # the repository root holds app.py (BuildPy leaves every other root module out)
        "vqlens.app": ".",
        "vqlens.app.pages": "pages",
        "vqlens.app.ui": "ui",
    },
    package_data={
        "vqcore": ["data/*.npz", "data/*.md"],
        "vqlens.app": [".streamlit/config.toml"],
    },
)
