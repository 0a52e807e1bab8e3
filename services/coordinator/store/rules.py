"""The conflict rule set: one versioned document, plus a history of every change."""

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from amity.coordinator.errors import InvalidRequestError, NotFoundError
from amity.coordinator.keys import Keys
from amity.coordinator.schemas.rules import Action, RuleChange, RuleSetPublic
from amity.rules import ConflictRule, RuleSet

EMPTY = RuleSetPublic(version=0, rules=[])


class RuleStore:
    def __init__(self, redis: Redis, keys: Keys, history_limit: int) -> None:
        self._redis = redis
        self._keys = keys
        self._history_limit = history_limit

    async def current(self) -> RuleSetPublic:
        raw = await self._redis.get(self._keys.rules)
        return RuleSetPublic.model_validate_json(raw) if raw else EMPTY

    async def put(self, rule: ConflictRule, actor: str) -> RuleChange:
        """Replace the rule for the same topic in place, or add it last (patterns match in order)."""
        def changed(rules: list[ConflictRule]) -> tuple[list[ConflictRule], ConflictRule | None]:
            before = next((r for r in rules if r.topic == rule.topic), None)
            if before is None:
                return [*rules, rule], None
            return [rule if r.topic == rule.topic else r for r in rules], before

        return await self._change(rule.topic, Action.SET, changed, actor, rule.regions)

    async def delete(self, topic: str, actor: str) -> RuleChange:
        def changed(rules: list[ConflictRule]) -> tuple[list[ConflictRule], ConflictRule | None]:
            before = next((r for r in rules if r.topic == topic), None)
            if before is None:
                raise NotFoundError(f"no conflict rule names topic {topic!r} (GET /v1/rules lists them)")
            return [r for r in rules if r.topic != topic], before

        return await self._change(topic, Action.DELETE, changed, actor, ())

    async def history(self, topic: str | None = None, limit: int = 100) -> list[RuleChange]:
        raw = await self._redis.lrange(self._keys.rules_history, 0, self._history_limit - 1)
        changes = (RuleChange.model_validate_json(value) for value in raw)
        return [change for change in changes if topic is None or change.topic == topic][:limit]

    async def _change(self, topic: str, action: Action,
                      changed: Callable[[list[ConflictRule]], tuple[list[ConflictRule], ConflictRule | None]],
                      actor: str, regions: tuple[str, ...]) -> RuleChange:
        async def write(pipe: Pipeline) -> RuleChange:
            raw = await pipe.get(self._keys.rules)
            current = RuleSetPublic.model_validate_json(raw) if raw else EMPTY
            unknown = sorted(set(regions) - set(await pipe.hkeys(self._keys.regions)))
            if unknown:
                raise InvalidRequestError(f"the rule for {topic!r} names regions that are not registered: {unknown}")
            rules, before = changed(current.rules)
            _require_valid_set(rules)
            after = next((r for r in rules if r.topic == topic), None)
            change = RuleChange(version=current.version + 1, at=datetime.now(UTC), actor=actor, action=action,
                                topic=topic, before=before, after=after)
            pipe.multi()
            pipe.set(self._keys.rules, RuleSetPublic(version=change.version, rules=rules).model_dump_json())
            pipe.lpush(self._keys.rules_history, change.model_dump_json())
            pipe.ltrim(self._keys.rules_history, 0, self._history_limit - 1)
            return change

        return await self._redis.transaction(write, self._keys.rules, self._keys.regions, value_from_callable=True)


def _require_valid_set(rules: list[ConflictRule]) -> None:
    try:
        RuleSet(rules=tuple(rules))
    except ValidationError as exc:
        raise InvalidRequestError(f"the rule set would be invalid: {exc.errors()[0]['msg']}") from None
