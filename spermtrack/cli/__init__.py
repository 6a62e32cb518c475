"""The ``spermtrack`` command: one module per sub-command group, loaded lazily."""
