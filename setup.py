"""The package list for setuptools (the rest of the metadata is in pyproject.toml).

The wheel carries the course's packs: the repository's ``assignments/`` and ``solutions/`` are
mapped to ``autograder/_bundled/assignments`` and ``autograder/_bundled/solutions``, where the pack
registry finds them once the kit is installed outside the repository.
"""

from setuptools import find_namespace_packages, setup

BUNDLED = {
    "assignments": "autograder._bundled.assignments",
    "solutions": "autograder._bundled.solutions",
}


def _bundled() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for folder, name in BUNDLED.items():
        for sub in ["", *find_namespace_packages(where=folder, exclude=["*__pycache__*"])]:
            package = f"{name}.{sub}" if sub else name
            packages.append(package)
            package_dir[package] = f"{folder}/{sub.replace('.', '/')}" if sub else folder
    return packages, package_dir


bundled, bundled_dirs = _bundled()
setup(
    packages=[
        *find_namespace_packages(include=["autograder", "autograder.*"], exclude=["*__pycache__*"]),
        *bundled,
    ],
    package_dir=bundled_dirs,
)
