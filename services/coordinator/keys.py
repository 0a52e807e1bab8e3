"""Every Redis key the coordinator uses, under one namespace (default `amity:v1:`).

The version in the namespace changes whenever this layout does, so a new
coordinator never misreads an old one's state.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str

    @property
    def regions(self) -> str:
        """HASH region name -> Region JSON, secrets included."""
        return f"{self.namespace}regions"

    @property
    def health(self) -> str:
        """HASH region name -> RegionHealth JSON, written by the monitor."""
        return f"{self.namespace}health"

    @property
    def links(self) -> str:
        """HASH link id -> LinkPublic JSON."""
        return f"{self.namespace}links"

    @property
    def rules(self) -> str:
        """STRING: the rule set JSON {version, rules}; one value because rule order matters."""
        return f"{self.namespace}rules"

    @property
    def rules_history(self) -> str:
        """LIST of RuleChange JSON, newest first, trimmed to the history limit."""
        return f"{self.namespace}rules:history"

    @property
    def workers(self) -> str:
        """HASH worker id -> WorkerRecord JSON."""
        return f"{self.namespace}workers"

    @property
    def workers_seen(self) -> str:
        """ZSET worker id -> unix time of its last heartbeat."""
        return f"{self.namespace}workers:seen"

    @property
    def workers_running(self) -> str:
        """HASH worker id -> the assignment generation it said it runs in its last heartbeat."""
        return f"{self.namespace}workers:running"

    @property
    def assignment(self) -> str:
        """STRING: the current AssignmentState JSON {generation, fingerprint, workers}."""
        return f"{self.namespace}assignment"

    @property
    def stats_totals(self) -> str:
        """HASH `link|topic|metric` -> total since the coordinator's state was created."""
        return f"{self.namespace}stats:totals"

    def stats_bucket(self, bucket: int) -> str:
        """HASH `link|topic|metric` -> increase during one short time bucket (expires)."""
        return f"{self.namespace}stats:bucket:{bucket}"

    def stats_last(self, worker_id: str) -> str:
        """HASH `link|topic` -> the worker's last TopicStats JSON; field `run` -> its run id."""
        return f"{self.namespace}stats:last:{worker_id}"
