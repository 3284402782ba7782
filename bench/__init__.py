"""flare-core benchmarks: ``python -m bench`` (``make bench``)."""
