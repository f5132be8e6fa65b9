"""The analyst views of sql/reports/ and `trackline report`."""
