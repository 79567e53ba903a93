"""What the broker holds: read from kombu's Redis layout, for the sweeps that must know
whether a waiting poster's message still exists somewhere."""

from __future__ import annotations

import redis

from posterlab.config import Settings
from posterlab.stages import QUEUES

BROKER_TIMEOUT = 2.0  # seconds: status must stay quick when the broker is down


def broker_idle(settings: Settings, *, younger_than: float) -> bool:
    """No message waits in a posterlab queue, and none was delivered to a consumer less
    than ``younger_than`` seconds ago (older unacknowledged ones belong to dead consumers).

    Reads kombu's Redis layout: one list per queue, ``unacked_index`` scored by delivery
    time. Raises ``redis.RedisError`` when the broker cannot be reached.
    """
    client = redis.Redis.from_url(settings.broker_url, socket_timeout=BROKER_TIMEOUT,
                                  socket_connect_timeout=BROKER_TIMEOUT)
    try:
        waiting = sum(int(client.llen(name)) for name in QUEUES)
        now = float(client.time()[0])
        recent = int(client.zcount("unacked_index", now - younger_than, "+inf"))
    finally:
        client.close()
    return waiting == 0 and recent == 0
