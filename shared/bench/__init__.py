"""`amity bench`: Amity's mirror against Apache Kafka MirrorMaker 2 and the clusters' own ceiling.

One run starts its own local regions, writes the source data once per
scenario, then measures each tool in turn (never two at once): the ceiling
(Kafka's perf tools), MirrorMaker 2 in dedicated mode, and `amity mirror run`.
docs/benchmarks.md says what is measured and how; its table is produced from
a results JSON by `amity bench --write-docs`.
"""
