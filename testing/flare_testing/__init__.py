"""flare-testing: FakeFlare, the contract suite and the pytest plugin."""

__all__: list[str] = []
