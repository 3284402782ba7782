"""The pytest plugin, as a downstream project uses it (run in a subprocess with pytester).

The plugin reaches pytest through the ``pytest11`` entry point ``flare_testing``; in a checkout
whose install predates that entry point it is enabled with ``-p flare_testing.plugin``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "flare_testing.plugin"

INI = """
[pytest]
addopts = --strict-markers
filterwarnings = error
asyncio_default_fixture_loop_scope = function
"""


def _plugin_args() -> list[str]:
    installed = any(point.value == PLUGIN for point in entry_points(group="pytest11"))
    return [] if installed else ["-p", PLUGIN]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    return pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider", *args)


def test_fixtures_give_a_fake_and_an_admin_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_downstream="""
        from flare_core import MonitorReturnCode

        def test_fake(flare_fake):
            before = flare_fake.now
            flare_fake.advance(30)
            assert flare_fake.now == before + 30

        def test_session(flare_fake, flare_session, tmp_path):
            assert flare_session.list_jobs() == []
            names = sorted(c.name for c in flare_session.get_connected_client_list())
            assert names == list(flare_fake.sites)

        def test_fresh_system_per_test(flare_session):
            assert flare_session.list_jobs() == []
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=3)


def test_a_contract_class_runs_with_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_contract="""
        import pytest
        from flare_testing.contract import ListJobsContract

        class TestListing(ListJobsContract):
            @pytest.fixture(params=["sync"])
            def flare_flavour(self, request):
                return request.param
        """
    )
    result = _run(pytester, "-q")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 20
    assert "failed" not in outcomes
    assert "skipped" not in outcomes
    assert "[async]" not in result.stdout.str()


def test_undeclared_capabilities_skip_with_their_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_contract="""
        import pytest
        from flare_testing.contract import MonitorContract

        class TestWithoutBackDoors(MonitorContract):
            @pytest.fixture
            def flare_capabilities(self):
                return frozenset()

            @pytest.fixture(params=["async"])
            def flare_flavour(self, request):
                return request.param
        """
    )
    result = _run(pytester, "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 10
    assert outcomes["skipped"] >= 5
    assert "failed" not in outcomes
    result.stdout.fnmatch_lines(
        ["*capability 'job_control' not declared: the harness can finish, fail, hold*"]
    )


def test_a_misspelt_capability_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_contract="""
        import pytest
        from flare_testing.contract import ContractBase

        class TestTypo(ContractBase):
            @pytest.mark.flare_requires("virtual_tme")
            def test_needs_time(self, session):
                pass
        """
    )
    result = _run(pytester)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*ValueError: unknown capabilities: ?'virtual_tme'?"])


def test_markers_are_documented(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.flare_contract:*", "@pytest.mark.flare_requires(*capabilities):*"]
    )
