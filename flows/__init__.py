"""Everything of trackline with I/O or Prefect, in rooms: run/ (flows, steps, state, publish), sources/,
warehouse/, xero/, reports/; the entry points (cli, settings, deployments) at the top. The rules themselves
are pure functions in transforms/."""
