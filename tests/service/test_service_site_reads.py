"""The status commands read the disabled-site set once per command, whatever the number of
sites: ``ServiceCore.site`` reads it for one site, and ``check_status`` and ``report_version``
used it once per addressed client (and once more per known site for the server's rows)."""

from __future__ import annotations

import pytest

from flare_core import CheckStatus, Command, DisableClient, ReportVersion
from tests.service.helpers import Harness, count_calls

SITES = tuple(f"site-{n}" for n in range(1, 13))

COMMANDS: dict[str, Command] = {
    "check_status server": CheckStatus(target_type="server"),
    "check_status client": CheckStatus(target_type="client"),
    "check_status all": CheckStatus(target_type="all"),
    "report_version client": ReportVersion(target_type="client"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_one_read_of_the_disabled_sites_per_command(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(sites=SITES)
    admin = h.login()
    reads = count_calls(monkeypatch, h.system.ports.sites, "disabled")
    value = h.ok(admin, COMMANDS[name])
    assert reads() <= 1
    if name.endswith(("client", "all")):
        assert {site for site in SITES if site in value} == set(SITES)


def test_a_disabled_site_is_still_reported_as_disabled() -> None:
    h = Harness(sites=SITES)
    admin = h.login()
    h.ok(admin, DisableClient(client_name="site-3"))
    by_name = {site.name: site for site in h.service.sites()}
    assert by_name["site-3"].disabled
    assert not by_name["site-4"].disabled
