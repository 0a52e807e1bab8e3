"""The local multi-region environment: one Kafka (KRaft) and one Redis per region.

Used by `amity dev`, `make demo`, the test fixtures and the benchmarks.
"""
