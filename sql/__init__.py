"""The warehouse's SQL (migrations/, reports/), installed as the package data `flows.sql` (pyproject.toml
maps this folder there) and read through importlib.resources, so a wheel carries it."""
