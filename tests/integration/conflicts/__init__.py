"""Conflict resolution against the real Redis and Kafka of the test regions."""
