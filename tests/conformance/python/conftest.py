"""Session fixtures: one real `coffer serve` for the whole run, official SDK clients pointed at it.

The server binary is ${COFFER_BIN:-target/debug/coffer}; this suite never builds it.
Server output goes to target/conformance-logs/<name>.log; the lines a failing test produced are attached
to its report.
"""

from __future__ import annotations

import pytest

from coffer_harness import RUNNING, CofferServer, check_admin_credentials_file


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> CofferServer:
    data_dir = tmp_path_factory.mktemp("coffer-data")
    srv = CofferServer(data_dir, name="python-session")
    srv.start()
    yield srv
    rc = srv.stop()
    assert rc == 0, f"coffer exited with status {rc} after SIGTERM (expected a graceful exit 0)\n{srv.log_tail()}"


@pytest.fixture
def make_server(tmp_path):
    """Factory for servers of a test's own (stopped, and required to exit 0, at teardown)."""
    started = []

    def make(name, port=None, extra_args=(), **kwargs):
        """kwargs go to CofferServer: dev=False (provisioned), recovery=True (with dev=False), env={...}."""
        srv = CofferServer(tmp_path / name, name=f"python-{name}", port=port, extra_args=extra_args, **kwargs)
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        if srv.proc is not None:
            rc = srv.stop()
            assert rc == 0, f"{srv.name}: exit status {rc} after SIGTERM"


@pytest.fixture(scope="session")
def admin_creds(server) -> dict:
    return check_admin_credentials_file(server.data_dir, server.port)


@pytest.fixture(scope="session")
def credential(server):
    return server.credential()


@pytest.fixture(scope="session")
def key_client(server, credential):
    return server.key_client(credential)


@pytest.fixture(scope="session")
def token(server, credential) -> str:
    """A bearer token of the bootstrap principal for the data plane (scope {url}/.default)."""
    return server.token(credential)


# ---------------------------------------------------------------------------------------------------------------
# Attach the server log lines written during a failing test to its report.

_OFFSETS_KEY = pytest.StashKey[dict]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_OFFSETS_KEY] = {id(s): s.log_size() for s in RUNNING}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        offsets = item.stash.get(_OFFSETS_KEY, {})
        for srv in list(RUNNING):
            text = srv.log_since(offsets.get(id(srv), 0))
            if text:
                report.sections.append((f"coffer log ({srv.name}, {srv.log_path})", text))
    return report
