"""The one vocabulary of sites and targets (flare_core.site_names)."""

from __future__ import annotations

import pytest

from flare_core.info import TargetType
from flare_core.site_names import ALL_SITES, SERVER_SITE, is_all_sites


@pytest.mark.parametrize("name", ["@ALL", "@all", "@All", ALL_SITES])
def test_the_wildcard_matches_in_any_case(name: str) -> None:
    assert is_all_sites(name)


@pytest.mark.parametrize("name", ["ALL", "all", "@ALLx", "server", ""])
def test_other_names_are_not_the_wildcard(name: str) -> None:
    assert not is_all_sites(name)


def test_the_server_target_is_the_server_site() -> None:
    assert TargetType.SERVER == SERVER_SITE == "server"
