"""/v1/rules: conflict rules per topic or topic pattern, versioned, with their history."""

from typing import Annotated

from fastapi import APIRouter, Query

from amity.coordinator.deps import Actor, CoordinatorDep, Reader
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES
from amity.coordinator.schemas.rules import RuleChange, RuleHistory, RuleMatch, RuleSetPublic
from amity.rules import MAX_TOPIC_PATTERN, TOPIC_NAME, ConflictRule, RuleSet

router = APIRouter(prefix="/v1/rules", tags=["rules"], responses=PROBLEM_RESPONSES)
Topic = Annotated[str, Query(min_length=1, max_length=MAX_TOPIC_PATTERN,
                             description="Topic name or the rule's pattern")]


@router.get("", dependencies=[Reader])
async def get_rules(c: CoordinatorDep) -> RuleSetPublic:
    """Every rule in matching order (exact names first, then patterns in this order)."""
    return await c.rules.current()


@router.get("/match", dependencies=[Reader])
async def match_rule(topic: Annotated[str, Query(pattern=f"^{TOPIC_NAME.pattern}$", description="A topic name")],
                     c: CoordinatorDep) -> RuleMatch:
    """The rule that applies to a topic, if any."""
    current = await c.rules.current()
    return RuleMatch(topic=topic, rule=RuleSet(rules=tuple(current.rules)).rule_for(topic), version=current.version)


@router.put("")
async def put_rule(rule: ConflictRule, c: CoordinatorDep, actor: Actor) -> RuleChange:
    """Set the rule for `rule.topic`, replacing one for the same topic; a new pattern goes last.
    Running workers pick it up with their next heartbeat."""
    return await c.rules.put(rule, actor)


@router.delete("")
async def delete_rule(topic: Topic, c: CoordinatorDep, actor: Actor) -> RuleChange:
    return await c.rules.delete(topic, actor)


@router.get("/history", dependencies=[Reader])
async def rule_history(c: CoordinatorDep, topic: Annotated[str | None, Query(max_length=MAX_TOPIC_PATTERN)] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> RuleHistory:
    """Who changed which rule when, newest first."""
    return RuleHistory(changes=await c.rules.history(topic, limit))
