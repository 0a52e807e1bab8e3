"""The coordinator's state in Redis, one store per resource.

Every change that reads before it writes runs in a WATCH/MULTI transaction,
so a request that fails validation persists nothing, and two requests racing
cannot both pass a check that only one of them may pass.
"""
