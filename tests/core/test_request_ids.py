"""Generated request ids: a forked process draws ids of its own."""

from __future__ import annotations

import os

from simplane.core.middleware import _request_ids


def test_a_forked_process_draws_other_request_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one draw, handed to the parent, then out at once
        os.write(write, b"%024x" % _request_ids.getrandbits(96))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64)
    os.close(read)
    assert len(child) == 24
    assert child != b"%024x" % _request_ids.getrandbits(96)
