"""The storage-port contract (``flare_testing.storage_contract``) over every store flare-core
ships: in memory and on SQLite (with the blob directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flare_adapters.memory.blobs import MemoryBlobStore
from flare_adapters.memory.stores import (
    MemoryJobStore,
    MemorySessionStore,
    MemorySiteStore,
    MemoryStudyStore,
    MemoryTokenStore,
)
from flare_adapters.sqlite.blobs import BlobDirectory
from flare_adapters.sqlite.db import Database
from flare_adapters.sqlite.stores import (
    SqliteJobStore,
    SqliteSessionStore,
    SqliteSiteStore,
    SqliteStudyStore,
    SqliteTokenStore,
)
from flare_core.service.ports import (
    BlobStore,
    JobStore,
    SessionStore,
    SiteStore,
    StudyStore,
    TokenStore,
)
from flare_testing.storage_contract import (
    BlobStoreContract,
    JobStoreContract,
    SessionStoreContract,
    SiteStoreContract,
    StudyStoreContract,
    TokenStoreContract,
)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(str(tmp_path / "flare.db"))
    try:
        yield db
    finally:
        db.close()


class TestMemoryJobs(JobStoreContract):
    @pytest.fixture
    def job_store(self) -> JobStore:
        return MemoryJobStore()


class TestSqliteJobs(JobStoreContract):
    @pytest.fixture
    def job_store(self, database: Database) -> JobStore:
        return SqliteJobStore(database)


class TestMemoryTokens(TokenStoreContract):
    @pytest.fixture
    def token_store(self) -> TokenStore:
        return MemoryTokenStore()


class TestSqliteTokens(TokenStoreContract):
    @pytest.fixture
    def token_store(self, database: Database) -> TokenStore:
        return SqliteTokenStore(database)


class TestMemoryStudies(StudyStoreContract):
    @pytest.fixture
    def study_store(self) -> StudyStore:
        return MemoryStudyStore()


class TestSqliteStudies(StudyStoreContract):
    @pytest.fixture
    def study_store(self, database: Database) -> StudyStore:
        return SqliteStudyStore(database)


class TestMemorySites(SiteStoreContract):
    @pytest.fixture
    def site_store(self) -> SiteStore:
        return MemorySiteStore()


class TestSqliteSites(SiteStoreContract):
    @pytest.fixture
    def site_store(self, database: Database) -> SiteStore:
        return SqliteSiteStore(database)


class TestMemorySessions(SessionStoreContract):
    @pytest.fixture
    def session_store(self) -> SessionStore:
        return MemorySessionStore()


class TestSqliteSessions(SessionStoreContract):
    @pytest.fixture
    def session_store(self, database: Database) -> SessionStore:
        return SqliteSessionStore(database)


class TestMemoryBlobs(BlobStoreContract):
    @pytest.fixture
    def blob_store(self) -> BlobStore:
        return MemoryBlobStore()


class TestBlobDirectory(BlobStoreContract):
    @pytest.fixture
    def blob_store(self, tmp_path: Path) -> BlobStore:
        return BlobDirectory(str(tmp_path / "blobs"))
