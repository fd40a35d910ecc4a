"""Agents: the model, the lifecycle table, the registry store, executors,
the scheduler, resource accounting and process sampling."""
