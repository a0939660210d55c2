"""The simulator (``soc simulate``): realistic public-service traffic, scenarios and ground truth.

Imitates the watched systems of every province and commune so that the rest of soc can be run,
tested, trained and measured without the real national systems. It writes exactly the formats of
``docs/log-formats.md`` (the contract with the collectors) and, for fast backfills, the normalised
ECS events the collectors would produce. It must never be imported by the detectors or the
collectors: it is a source of traffic, not part of the pipeline.
"""
