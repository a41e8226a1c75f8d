# ---------------------------------------------------------------------------
# redis-ratelimit peer check: appended at test time to the conftest.py of
# limits' own test suite (downloaded from PyPI, never stored in our repo) by
# clients/python/limits-suite/run.sh. It points the suite's Redis tests at
# our redis-server with the module (started by run.sh on a free 127.0.0.1
# port) instead of docker, and, by RL_SUITE_MODE:
#   storage  every Redis storage URI becomes ours (ratelimit:// and
#            async+ratelimit://): limits' strategies over our storage;
#   dropin   limits' RedisStorage stays (on our server), and limits'
#            strategy classes are replaced by redis_ratelimit's drop-ins.
# Only the plain Redis parameters run; the others (sockets, auth, TLS,
# cluster, sentinel, memcached, ...) are deselected.
# ---------------------------------------------------------------------------
import os as _rl_os

import pytest as _rl_pytest
import redis as _rl_redis

_RL_MODE = _rl_os.environ["RL_SUITE_MODE"]
_RL_PORT = int(_rl_os.environ["RL_SUITE_PORT"])
_RL_URIS = {
    "redis://localhost:7379": {
        "storage": f"ratelimit://127.0.0.1:{_RL_PORT}",
        "dropin": f"redis://127.0.0.1:{_RL_PORT}",
    },
    "async+redis://localhost:7379": {
        "storage": f"async+ratelimit://127.0.0.1:{_RL_PORT}",
        "dropin": f"async+redis://127.0.0.1:{_RL_PORT}",
    },
}

import redis_ratelimit.limits_storage  # noqa: E402,F401  (registers ratelimit://)

if _RL_MODE == "dropin":
    import limits.aio.strategies as _rl_lim_aio
    import limits.strategies as _rl_lim

    import redis_ratelimit.aio.strategies as _rl_ours_aio
    import redis_ratelimit.strategies as _rl_ours

    for _rl_name in (
        "FixedWindowRateLimiter",
        "MovingWindowRateLimiter",
        "SlidingWindowCounterRateLimiter",
    ):
        setattr(_rl_lim, _rl_name, getattr(_rl_ours, _rl_name))
        setattr(_rl_lim_aio, _rl_name, getattr(_rl_ours_aio, _rl_name))


@_rl_pytest.fixture(scope="session")
def docker_services():  # noqa: F811 - replaces the docker-managed servers
    return None


@_rl_pytest.fixture(scope="session")
def redis_basic_client(docker_services):  # noqa: F811
    return _rl_redis.StrictRedis("127.0.0.1", _RL_PORT)


def pytest_collection_modifyitems(config, items):
    from limits.aio.storage import RedisStorage as _AioRedisStorage
    from limits.storage import RedisStorage as _RedisStorage

    from redis_ratelimit.aio.limits_storage import AsyncRateLimitStorage
    from redis_ratelimit.limits_storage import RateLimitStorage

    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        uri = params.get("uri")
        if uri not in _RL_URIS:
            drop.append(item)
            continue
        params["uri"] = _RL_URIS[uri][_RL_MODE]
        if _RL_MODE == "storage" and "expected_instance" in params:
            params["expected_instance"] = {
                _RedisStorage: RateLimitStorage,
                _AioRedisStorage: AsyncRateLimitStorage,
            }.get(params["expected_instance"], params["expected_instance"])
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
