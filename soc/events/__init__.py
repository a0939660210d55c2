"""Events in soc's ECS schema: identity, daily index routing and bulk indexing (see ``service``)."""
