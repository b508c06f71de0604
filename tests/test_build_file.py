"""BUILD stays in step with the tree: every module and test file has a target."""

import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("layers", "zoo", "export")


def _targets():
    targets = []

    def rule(kind):
        def record(**kwargs):
            targets.append(dict(kwargs, kind=kind))

        return record

    namespace = {
        "load": lambda *args: None,
        "package": lambda **kwargs: None,
        "requirement": lambda name: f"@pypi//{name}",
        "glob": lambda patterns, **kwargs: sorted(
            os.path.relpath(p, ROOT) for pat in patterns for p in glob.glob(os.path.join(ROOT, pat), recursive=True)
        ),
        "py_library": rule("py_library"),
        "py_binary": rule("py_binary"),
        "py_test": rule("py_test"),
    }
    with open(os.path.join(ROOT, "BUILD")) as f:
        exec(compile(f.read(), "BUILD", "exec"), namespace)
    return targets


def _tree(pattern):
    return {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern), recursive=True)}


def test_every_package_module_is_in_its_py_library():
    libraries = {t["name"]: set(t["srcs"]) for t in _targets() if t["kind"] == "py_library"}
    for package in PACKAGES:
        missing = _tree(f"{package}/**/*.py") - libraries.get(package, set())
        assert not missing, f"BUILD: add {sorted(missing)} to py_library '{package}'"


def test_every_test_file_has_a_py_test_and_support_files_a_library():
    targets = _targets()
    tested = {src for t in targets if t["kind"] == "py_test" for src in t["srcs"]}
    missing = _tree("tests/**/test_*.py") - tested
    assert not missing, f"BUILD: add a py_test for {sorted(missing)}"
    covered = {src for t in targets for src in t.get("srcs", [])} | {
        d for t in targets for d in t.get("data", []) if d.endswith(".py") and d.startswith("tests/")
        and not d.startswith("tests/test_")
    }
    helpers = _tree("tests/**/*.py") - _tree("tests/**/test_*.py")
    assert not helpers - covered, f"BUILD: cover {sorted(helpers - covered)} (test_support srcs or a test's data)"
    benchmarks = _tree("benchmarks/*.py")
    assert not benchmarks - covered, f"BUILD: add a py_binary for {sorted(benchmarks - covered)}"


def test_every_listed_file_exists_and_every_dep_resolves():
    targets = _targets()
    names = {t["name"] for t in targets}
    assert len(names) == len(targets), "BUILD: duplicate target names"
    for t in targets:
        for src in t.get("srcs", []) + [d for d in t.get("data", []) if not d.startswith("@")]:
            assert os.path.exists(os.path.join(ROOT, src)), f"BUILD target {t['name']}: {src} does not exist"
        for dep in t.get("deps", []):
            if dep.startswith(":"):
                assert dep[1:] in names, f"BUILD target {t['name']}: unknown dep {dep}"
    for t in targets:
        if t["kind"] == "py_test":
            assert len(t["srcs"]) == 1, f"py_test {t['name']} should hold exactly its test file"
