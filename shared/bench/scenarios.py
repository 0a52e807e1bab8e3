"""The benchmark's scenarios and the topics each tool reads and writes in them.

Every scenario has two phases, measured on the same running mirror: a
backlog drain (throughput, CPU per record, counted until the mirror is idle)
and then steady load at a fixed rate (latency). The source data is written once per scenario; each tool gets
its own destination topics and its own probe topics, so no run sees another's
records. Tools run one after another in the order ceiling, mm2, amity: in
active-active, Amity's identity naming writes into the other region's source
topic, so it must come after every tool that reads that topic.
"""

from dataclasses import dataclass

from amity.bench.results import Tool
from amity.state import Engine

# The scenario every resolver scenario is compared with in the same run: keyed data of plain clients, mirrored plainly.
BASELINE = "none"
SOURCE_REGIONS = ("us", "eu")
TOOL_ORDER = (Tool.CEILING, Tool.MM2, Tool.AMITY)


@dataclass(frozen=True, slots=True)
class Flow:
    """One direction of replication."""

    source: str
    destination: str

    @property
    def name(self) -> str:
        return f"{self.source}-to-{self.destination}"


ONE_WAY = (Flow("us", "eu"),)
BOTH_WAYS = (Flow("us", "eu"), Flow("eu", "us"))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    flows: tuple[Flow, ...]
    exactly_once: bool = False
    resolver: str | None = None
    # The policy the sources are written through amity.Producer under, stamped as they are written (lww for
    # plain mirroring's stamped data: a producer stamps nothing under policy none); None: plain Kafka clients,
    # whose records the mirror stamps at their first hop (one more Redis script per record).
    stamped_under: str | None = None
    first_hop: str = "state"  # the rule's first_hop: how the mirror stamps plain clients' records (amity.rules)
    # What runs the version state in the regions' Redis (amity.state.Engine): the amitystate module where the regions
    # have it loaded (`amity dev` builds and loads it), else, or with "lua", the Lua scripts every Redis has.
    state_engine: Engine = Engine.MODULE
    tools: tuple[Tool, ...] = TOOL_ORDER
    # Plain mirroring of data written as this scenario's is (besides BASELINE): a resolver scenario's own cost.
    baseline: str = BASELINE

    def topic(self, tag: str) -> str:
        """The source topic of this scenario's data, the same name in every source region."""
        return f"bench-{self.name}-{tag}"

    def probe_topic(self, tag: str, tool: Tool) -> str:
        """The topic a tool's latency probe writes into, in every source region."""
        return f"{self.topic(tag)}-probe-{tool.value}"

    @property
    def keyed(self) -> bool:
        """Resolvers decide per key, so their data has keys; plain mirroring does not need them."""
        return self.resolver is not None


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("one-way", "us to eu, at-least-once", ONE_WAY),
    Scenario("active-active", "us to eu and eu to us at once, at-least-once "
             "(Amity: same topic names both ways; MirrorMaker 2: prefixed remote topics)", BOTH_WAYS),
    Scenario("exactly-once", "us to eu, exactly-once (Amity delivery: exactly-once; "
             "MirrorMaker 2: exactly.once.source.support=enabled)", ONE_WAY, exactly_once=True),
    Scenario("none", "active-active on the resolver scenarios' keyed data under a rule of policy none: plain "
             "mirroring, the baseline of the resolver scenarios' ratio rows", BOTH_WAYS, resolver="none",
             tools=(Tool.AMITY,)),
    Scenario("lww", "active-active with Amity's lww conflict resolver on every record", BOTH_WAYS,
             resolver="lww", tools=(Tool.AMITY,)),
    Scenario("vector", "active-active with Amity's vector conflict resolver on every record", BOTH_WAYS,
             resolver="vector", tools=(Tool.AMITY,)),
    Scenario("lww-lua", "as lww, the version state's operations run by the Lua scripts (state_engine lua), as on a "
             "Redis without the amitystate module (managed services)", BOTH_WAYS, resolver="lww", state_engine=Engine.LUA,
             tools=(Tool.AMITY,)),
    Scenario("vector-lua", "as vector, the version state's operations run by the Lua scripts", BOTH_WAYS,
             resolver="vector", state_engine=Engine.LUA, tools=(Tool.AMITY,)),
    Scenario("lww-from-timestamp", "as lww, the rule stamping plain clients' records from their timestamp at their "
             "first hop (first_hop: timestamp): no Redis call per record in the source", BOTH_WAYS, resolver="lww",
             first_hop="timestamp", tools=(Tool.AMITY,)),
    Scenario("none-stamped", "as none, the sources written through amity.Producer (stamped as lww-stamped's): "
             "plain mirroring of the stamped scenarios' data, whose headers every link decodes", BOTH_WAYS,
             resolver="none", stamped_under="lww", tools=(Tool.AMITY,)),
    Scenario("lww-stamped", "as lww, the sources written through amity.Producer: stamped when written, not at "
             "their first hop", BOTH_WAYS, resolver="lww", stamped_under="lww", tools=(Tool.AMITY,),
             baseline="none-stamped"),
    Scenario("vector-stamped", "as vector, the sources written through amity.Producer", BOTH_WAYS,
             resolver="vector", stamped_under="vector", tools=(Tool.AMITY,), baseline="none-stamped"),
)}
KEYS = 10_000
PROBE_IDS = {flow: i + 1 for i, flow in enumerate(BOTH_WAYS)}
