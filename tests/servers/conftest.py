"""Makes the server fixtures available when tests/servers runs on its own (``--confcutdir``)."""

from tests.servers.fixtures import *  # noqa: F403
