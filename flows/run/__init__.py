"""A run: the Prefect flows, their steps, the run's typed state, the atomic publish and the accounting check."""
