"""What the scenarios' forked children report back to their parent through a pipe."""

import os


def read_to_end(fd: int) -> bytes:
    """Everything written to the pipe `fd` until its last writer closed it (or exited)."""
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)
