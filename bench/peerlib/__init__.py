"""The peer comparison's parts: the split it runs on, one wrapper per filter, and the report."""
