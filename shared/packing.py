"""msgpack packing with one Packer per thread, for values packed once per record on the mirror's path.

`msgpack.packb` builds a Packer per call, which costs as much as the packing itself, and a Packer is not
safe to share between threads (each link runs on its own). The bytes are packb's: same defaults.
"""

import threading

import msgpack


class _Packers(threading.local):
    def __init__(self) -> None:
        self.packer = msgpack.Packer()


_PACKERS = _Packers()


def packb(value: object) -> bytes:
    """`msgpack.packb(value)`, with this thread's Packer."""
    return _PACKERS.packer.pack(value)
