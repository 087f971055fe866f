"""Human verification in Argilla: server, dataset settings, push / pull, dashboard."""
