"""The benchmark of trackline against a DuckDB SQL peer and a pandas peer (`make bench`, never `make test`)."""
