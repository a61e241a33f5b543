"""The plugin registry, through real entry points.

Each throwaway distribution is a ``*.dist-info`` folder (METADATA + entry_points.txt) in a
temporary directory on ``sys.path``; its module lives in ``tests/plugins/`` or is written
beside it. ``importlib.metadata`` finds them exactly as it finds installed distributions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardkit
from rewardkit import InvalidArgument, NotFound, PluginError, Scorer
from rewardkit import plugins
from rewardkit.plugins import hookimpl, hookspecs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent

BUILTINS = {
    "format": "scorer",
    "xmlcount": "scorer",
    "proximity": "scorer",
    "length": "scorer",
    "contains": "scorer",
    "exact_match": "scorer",
    "math_equivalence": "verifier",
    "code_tests": "verifier",
    "math": "rubric",
    "gsm8k_classic": "rubric",
}


def write_dist(root: Path, dist: str, entry_points: dict[str, str], *, version: str = "1.0",
               modules: dict[str, str] | None = None) -> None:
    """A minimal installed distribution: what pip leaves in site-packages."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[rewardkit]\n{lines}")
    for name, source in (modules or {}).items():
        (root / f"{name}.py").write_text(source)


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    plugins.reload()
    yield
    for name in [m for m in sys.modules if m.startswith(("rk_fixture", "rk_tmp"))]:
        del sys.modules[name]
    plugins.reload()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site-packages stand-in on sys.path, plus tests/plugins for the fixture modules."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


# built-ins ----------------------------------------------------------------------------


def test_builtins_are_registered_with_their_kinds():
    found = rewardkit.available()
    for name, kind in BUILTINS.items():
        assert found[name]["kind"] == kind
        assert found[name]["distribution"] == "rewardkit"
        assert found[name]["description"]
        assert found[name]["version"]
    assert list(found) == sorted(found)


@pytest.mark.parametrize("kind", ["verifier", "scorer", "rubric"])
def test_available_filters_by_kind(kind):
    found = rewardkit.available(kind)
    ours = {n for n, info in found.items() if info["distribution"] == "rewardkit"}
    assert ours == {n for n, k in BUILTINS.items() if k == kind}  # installed plugins may add more
    assert all(info["kind"] == kind for info in found.values())


@pytest.mark.parametrize("kind", ["scorers", "Scorer", "", 3])
def test_available_rejects_unknown_kind(kind):
    with pytest.raises(InvalidArgument, match=r"kind="):
        rewardkit.available(kind)


@pytest.mark.parametrize(
    "name, options",
    [
        ("format", {"style": "strict"}),
        ("xmlcount", {}),
        ("proximity", {}),
        ("length", {"target": (1, 10)}),
        ("contains", {"keywords": ["x"]}),
        ("exact_match", {}),
        ("math_equivalence", {}),
        ("code_tests", {}),
        ("math", {"format_weight": 0.5}),
        ("gsm8k_classic", {}),
    ],
)
def test_every_builtin_builds_an_object_of_its_kind(name, options):
    obj = rewardkit.get(name, **options)
    kind = BUILTINS[name]
    if kind == "rubric":
        assert isinstance(obj, rewardkit.Rubric)
    else:
        assert obj.kind == kind and isinstance(obj, rewardkit.Component)
    assert rewardkit.get(name, **options) is not obj


def test_builtin_options_reach_the_factory():
    assert rewardkit.get("math", format_weight=0.5).weights["format"] == 0.5
    with pytest.raises(InvalidArgument, match="style="):
        rewardkit.get("format", style="loose")


def test_builtins_load_even_with_empty_allowlist(monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, "")
    plugins.reload()
    assert set(BUILTINS) <= set(rewardkit.available())


def test_loading_the_registry_imports_no_component_module():
    code = (
        "import sys, rewardkit; rewardkit.available(); "
        "heavy = [m for m in ('rewardkit.scorers', 'rewardkit.rubric', 'rewardkit.rubrics', "
        "'rewardkit.verifiers.math', 'rewardkit.verifiers.code', 'sympy') if m in sys.modules]; "
        "print(heavy)"
    )
    for allow in ("", None):  # built-ins alone, then with whatever plugins are installed
        env = {k: v for k, v in os.environ.items() if k != plugins.ENV_VAR}
        if allow is not None:
            env[plugins.ENV_VAR] = allow
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[]"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(NotFound, match=r"'math_equivalnce'.*did you mean 'math_equivalence'"):
        rewardkit.get("math_equivalnce")
    with pytest.raises(KeyError):  # NotFound is a KeyError for ordinary code
        rewardkit.get("zzzzzz")


def test_unknown_name_without_close_match_lists_names():
    with pytest.raises(NotFound) as info:
        rewardkit.get("qqqqqqqq")
    assert "math_equivalence" in str(info.value) and "did you mean" not in str(info.value)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=30))
def test_any_unregistered_name_raises_not_found(name):
    if name in rewardkit.available():
        return
    with pytest.raises(NotFound) as info:
        rewardkit.get(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", [None, 3, b"math", ["math"]])
def test_get_rejects_non_string_names(name):
    with pytest.raises(InvalidArgument, match="name="):
        rewardkit.get(name)


def test_hookspecs_are_four_documented_register_hooks():
    names = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert names == ["register_backends", "register_rubrics", "register_scorers", "register_verifiers"]
    for name in names:
        assert getattr(hookspecs, name).__doc__
    pm = plugins.plugin_manager()
    assert all(getattr(pm.hook, n).has_spec() for n in names)


# discovery through entry points -------------------------------------------------------


def test_plugin_is_found_through_its_entry_point_lazily(site):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"}, version="2.3.4")
    plugins.reload()
    assert "rk_fixture_good" not in sys.modules  # nothing imported until first use
    info = rewardkit.available()["shout"]
    assert info == {
        "kind": "scorer",
        "description": "completion is in capitals",
        "distribution": "rk-fixture-good",
        "version": "2.3.4",
    }
    assert "rk_fixture_good" in sys.modules
    assert rewardkit.available("rubric")["shout_rubric"]["distribution"] == "rk-fixture-good"


def test_get_builds_a_new_instance_with_options(site):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"})
    plugins.reload()
    a, b = rewardkit.get("shout"), rewardkit.get("shout", min_length=5, name="loud")
    assert a is not b and isinstance(a, Scorer)
    assert (a.min_length, b.min_length, b.name) == (1, 5, "loud")
    assert a.score("HI").value == 1.0 and b.score("HI").value == 0.0
    rubric = rewardkit.get("shout_rubric")
    assert rubric.score("YES").total == 1.0


def test_entry_points_are_read_once(site, monkeypatch):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"})
    calls = []
    real = plugins.metadata.entry_points
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda **kw: calls.append(kw) or real(**kw))
    plugins.reload()
    threads = [threading.Thread(target=rewardkit.available) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rewardkit.get("shout")
    assert len(calls) == 1


def test_list_plugins_names_distribution_version_and_registrations(site):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"}, version="0.9")
    plugins.reload()
    listed = {p["distribution"]: p for p in plugins.list_plugins()}
    assert listed["rk-fixture-good"]["version"] == "0.9"
    assert listed["rk-fixture-good"]["entry_point"] == "good = rk_fixture_good"
    assert listed["rk-fixture-good"]["registers"] == {"scorer": ["shout"], "rubric": ["shout_rubric"]}
    assert set(listed["rewardkit"]["registers"]["rubric"]) == {"math", "gsm8k_classic"}
    json.dumps(listed)  # the CLI prints it


# loud failures ------------------------------------------------------------------------


def test_duplicate_of_a_builtin_names_both_distributions(site):
    write_dist(site, "rk-fixture-dup", {"dup": "rk_fixture_dup"})
    plugins.reload()
    with pytest.raises(PluginError, match=r"'length'.*'rewardkit'.*'rk-fixture-dup'"):
        rewardkit.available()


def test_duplicate_between_two_third_party_plugins_names_both(site):
    source = (
        "from rewardkit.plugins import hookimpl\n"
        "@hookimpl\n"
        "def register_rubrics(register):\n"
        "    register('shared', lambda **o: None)\n"
    )
    write_dist(site, "rk-alpha", {"a": "rk_tmp_alpha"}, modules={"rk_tmp_alpha": source})
    write_dist(site, "rk-beta", {"b": "rk_tmp_beta"}, modules={"rk_tmp_beta": source})
    plugins.reload()
    with pytest.raises(PluginError) as info:
        rewardkit.get("math")
    message = str(info.value)
    assert "'shared'" in message and "'rk-alpha'" in message and "'rk-beta'" in message


def test_failure_is_not_sticky_and_nothing_is_half_registered(site, monkeypatch):
    write_dist(site, "rk-fixture-dup", {"dup": "rk_fixture_dup"})
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"})
    plugins.reload()
    for _ in range(2):  # raises every time, not once and then a partial registry
        with pytest.raises(PluginError):
            rewardkit.available()
    monkeypatch.setenv(plugins.ENV_VAR, "rk-fixture-good")  # the escape hatch
    plugins.reload()
    assert rewardkit.available()["shout"]["distribution"] == "rk-fixture-good"


@pytest.mark.parametrize(
    "module, dist, pattern",
    [
        ("rk_fixture_typo", "rk-fixture-typo", r"'rk-fixture-typo'.*unknown hook 'register_scorer'.*did you mean 'register_scorers'"),
        ("rk_fixture_broken", "rk-fixture-broken", r"'rk-fixture-broken'.*failed to import: ModuleNotFoundError.*rk_fixture_no_such_dependency"),
        ("rk_fixture_unmarked", "rk-fixture-unmarked", r"'rk-fixture-unmarked' defines register_scorers\(\).*@hookimpl"),
        ("rk_fixture_raises", "rk-fixture-raises", r"'rk-fixture-raises' \(entry point p = rk_fixture_raises\) failed in register_verifiers: RuntimeError: database unreachable"),
        ("rk_fixture_badname", "rk-fixture-badname", r"'rk-fixture-badname' registered scorer name 'two words'"),
        ("rk_fixture_missing_attr:nothing", "rk-fixture-attr", r"'rk-fixture-attr'.*failed to import"),
    ],
)
def test_broken_plugins_fail_loudly_naming_the_distribution(site, module, dist, pattern):
    if module.endswith(":nothing"):
        (site / "rk_fixture_missing_attr.py").write_text("x = 1\n")
    write_dist(site, dist, {"p": module})
    plugins.reload()
    with pytest.raises(PluginError, match=pattern):
        rewardkit.get("math")


HOSTILE = {
    "exit_at_import": ("import sys\nsys.exit(3)\n", r"failed to import: SystemExit: the plugin called sys\.exit\(3\)"),
    "exit_message": ("raise SystemExit('bye')\n", r"failed to import: SystemExit: the plugin called sys\.exit\('bye'\)"),
    # neither an Exception nor SystemExit: plugin code can raise anything
    "base_exception": ("class PluginQuit(BaseException):\n    pass\nraise PluginQuit('odd')\n",
                       r"failed to import: PluginQuit: odd"),
    "exit_in_hook": (
        "import sys\nfrom rewardkit.plugins import hookimpl\n@hookimpl\ndef register_rubrics(register):\n    sys.exit(0)\n",
        r"failed in register_rubrics: SystemExit: the plugin called sys\.exit\(0\)",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_plugin_raising_system_exit_or_any_base_exception_is_a_plugin_error(site, case):
    source, cause = HOSTILE[case]
    write_dist(site, "rk-hostile", {"h": "rk_tmp_hostile"}, modules={"rk_tmp_hostile": source})
    plugins.reload()
    for call in (lambda: rewardkit.get("math"), rewardkit.available, plugins.list_plugins):
        with pytest.raises(PluginError, match=r"plugin 'rk-hostile' \(entry point h = rk_tmp_hostile\) " + cause):
            call()


def test_keyboard_interrupt_from_a_plugin_is_not_swallowed(site):
    # a Ctrl-C during loading cannot be told apart from one a plugin raises: it must stop us
    write_dist(site, "rk-ctrl-c", {"c": "rk_tmp_ctrl_c"}, modules={"rk_tmp_ctrl_c": "raise KeyboardInterrupt\n"})
    plugins.reload()
    with pytest.raises(KeyboardInterrupt):
        rewardkit.available()


def test_list_plugins_include_broken_reports_each_plugin_and_never_raises(site, monkeypatch):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"})
    write_dist(site, "rk-exits", {"x": "rk_tmp_exits"}, modules={"rk_tmp_exits": "import sys\nsys.exit(3)\n"})
    write_dist(site, "rk-fixture-typo", {"t": "rk_fixture_typo"})
    write_dist(site, "rk-fixture-raises", {"r": "rk_fixture_raises"})
    write_dist(site, "rk-fixture-dup", {"d": "rk_fixture_dup"})
    # registers a scorer, then fails in its rubric hook: must register nothing at all
    half = (
        "from rewardkit.plugins import hookimpl\n"
        "@hookimpl\ndef register_scorers(register):\n    register('half.ok', lambda **o: None)\n"
        "@hookimpl\ndef register_rubrics(register):\n    raise RuntimeError('half way')\n"
    )
    write_dist(site, "rk-half", {"half": "rk_tmp_half"}, modules={"rk_tmp_half": half})
    plugins.reload()
    listed = {p["distribution"]: p for p in plugins.list_plugins(include_broken=True)}
    assert listed["rewardkit"]["error"] is None and "math" in listed["rewardkit"]["registers"]["rubric"]
    assert listed["rk-fixture-good"]["error"] is None
    assert listed["rk-fixture-good"]["registers"] == {"scorer": ["shout"], "rubric": ["shout_rubric"]}
    expected = {
        "rk-exits": r"'rk-exits' \(entry point x = rk_tmp_exits\) failed to import: SystemExit",
        "rk-fixture-typo": r"unknown hook 'register_scorer'",
        "rk-fixture-raises": r"failed in register_verifiers: RuntimeError: database unreachable",
        "rk-fixture-dup": r"'length' is registered twice.*'rewardkit'.*'rk-fixture-dup'",
        "rk-half": r"failed in register_rubrics: RuntimeError: half way",
    }
    for dist, pattern in expected.items():
        assert re.search(pattern, listed[dist]["error"]), listed[dist]
        assert listed[dist]["registers"] == {}
        assert listed[dist]["entry_point"] and listed[dist]["version"] == "1.0"
    # the registry itself stays all or nothing
    with pytest.raises(PluginError):
        rewardkit.get("shout")
    monkeypatch.setenv(plugins.ENV_VAR, "rk-fixture-good")
    plugins.reload()
    assert [p["error"] for p in plugins.list_plugins(include_broken=True)] == [None, None]
    assert rewardkit.get("shout").score("HI").value == 1.0


def test_bad_signature_for_a_known_hook_names_the_plugin(site):
    source = (
        "from rewardkit.plugins import hookimpl\n"
        "@hookimpl\n"
        "def register_scorers(register, extra):\n"
        "    pass\n"
    )
    write_dist(site, "rk-sig", {"s": "rk_tmp_sig"}, modules={"rk_tmp_sig": source})
    plugins.reload()
    with pytest.raises(PluginError, match=r"'rk-sig' is invalid.*extra"):
        rewardkit.available()


# allowlist ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "allow, expected",
    [
        (None, True),
        ("", False),
        ("rk-fixture-good", True),
        ("RK_Fixture.Good", True),  # distribution names compare like pip compares them
        ("good", True),  # entry-point name
        (" other , rk-fixture-good ", True),
        ("other", False),
        (",", False),
    ],
)
def test_allowlist(site, monkeypatch, allow, expected):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"})
    if allow is not None:
        monkeypatch.setenv(plugins.ENV_VAR, allow)
    plugins.reload()
    assert ("shout" in rewardkit.available()) is expected
    assert set(BUILTINS) <= set(rewardkit.available())
    assert ("rk_fixture_good" in sys.modules) is expected  # left-out plugins are not imported


def test_allowlist_keeps_a_broken_plugin_out(site, monkeypatch):
    write_dist(site, "rk-fixture-broken", {"p": "rk_fixture_broken"})
    monkeypatch.setenv(plugins.ENV_VAR, "")
    plugins.reload()
    assert "math" in rewardkit.available()


def test_not_found_mentions_the_allowlist(site, monkeypatch):
    write_dist(site, "rk-fixture-good", {"good": "rk_fixture_good"})
    monkeypatch.setenv(plugins.ENV_VAR, "")
    plugins.reload()
    with pytest.raises(NotFound, match=r"REWARDKIT_PLUGINS=''"):
        rewardkit.get("shout")


# in-process plugins -------------------------------------------------------------------


class _Tiny:
    @hookimpl
    def register_scorers(self, register):
        register("tiny", lambda **options: ("tiny", options), description="an in-process plugin")


def test_add_plugin_registers_through_the_same_hooks_until_reload():
    plugins.add_plugin(_Tiny(), name="notebook")
    assert rewardkit.available()["tiny"]["distribution"] == "notebook"
    assert rewardkit.get("tiny", a=1) == ("tiny", {"a": 1})
    plugins.reload()
    assert "tiny" not in rewardkit.available()


def test_add_plugin_validates_at_once():
    class Clash:
        @hookimpl
        def register_rubrics(self, register):
            register("math", lambda **options: None)

    with pytest.raises(PluginError, match=r"'math'.*'rewardkit'.*'clash'"):
        plugins.add_plugin(Clash(), name="clash")
    assert "math" in rewardkit.available()  # the registry is still usable
    with pytest.raises(InvalidArgument, match="name="):
        plugins.add_plugin(_Tiny(), name=" ")


# the first-party email plugin ---------------------------------------------------------


def _email_env(tmp_path: Path) -> dict[str, str]:
    """Environment in which rewardkit-email is discoverable: installed, or a dist-info
    built from its own pyproject's entry point (still found through importlib.metadata)."""
    env = dict(os.environ)
    env.pop(plugins.ENV_VAR, None)
    paths = [str(ROOT)]
    try:
        import importlib.metadata as md

        md.distribution("rewardkit-email")
    except Exception:
        import tomllib

        project = tomllib.loads((ROOT / "plugins/rewardkit-email/pyproject.toml").read_text())["project"]
        write_dist(tmp_path, project["name"], project["entry-points"]["rewardkit"], version=project["version"])
        paths += [str(tmp_path), str(ROOT / "plugins/rewardkit-email")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env


def test_email_plugin_is_found_through_its_entry_point(tmp_path):
    code = (
        "import json, sys, rewardkit\n"
        "before = 'rewardkit_email' in sys.modules\n"
        "info = rewardkit.available()\n"
        "rubric = rewardkit.get('email')\n"
        "print(json.dumps({'before': before, 'email': info['email'], "
        "'signature': info['email.signature']['kind'], 'rubric': type(rubric).__name__, "
        "'module': type(rewardkit.get('email.signature')).__module__}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=_email_env(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["before"] is False
    assert got["email"]["distribution"] == "rewardkit-email"
    assert got["email"]["kind"] == "rubric"
    assert got["signature"] == "scorer"
    assert got["rubric"] == "Rubric"
    assert got["module"].startswith("rewardkit_email")


def test_the_plugin_in_the_docs_installs_and_is_discovered(tmp_path):
    """docs/plugins.md's complete plugin, built and installed by pip, found by entry point."""
    import re

    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(re.search(r"```toml\n(.*?)```", text, re.S).group(1))
    module = re.search(r"`rewardkit_polite.py`:\n\n```python\n(.*?)```", text, re.S).group(1)
    (src / "rewardkit_polite.py").write_text(module)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--no-index",
           "--disable-pip-version-check", "--target", str(target), str(src)]
    built = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    code = (
        "import json, rewardkit\n"
        "info = rewardkit.available()\n"
        "value = rewardkit.get('polite').score('Thanks, and please reply soon.').value\n"
        "total = rewardkit.get('polite_reply').score('thank you').total\n"
        "print(json.dumps([info['polite'], info['polite_reply']['kind'], value, total]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    env.pop(plugins.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    info, kind, value, total = json.loads(out.stdout)
    assert info["distribution"] == "rewardkit-polite" and info["version"] == "0.1.0"
    assert kind == "rubric" and value == pytest.approx(2 / 3) and total == pytest.approx(1 / 3)
